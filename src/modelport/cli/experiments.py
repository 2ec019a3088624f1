"""``modelport experiments start|stop|list|report``: experiments in the outcome store.

``start`` records a named experiment of a model from now on; with ``--traffic`` (a policy as
JSON) it also publishes that policy to the repository's rollout state, which every server serving
it applies (as the admin API's ``PUT /admin/models/{m}/traffic``). ``stop`` ends the running one.
``report`` shows the running experiment's report, ``--experiment NAME`` a past one's, or everything
recorded when none runs.
"""

# typer reads the annotations at run time and needs Optional[...] on Python 3.10:
# ruff: noqa: UP045

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from modelport.cli.options import ModelsOpt, err, out
from modelport.cli.options import settings as _settings

if TYPE_CHECKING:
    from modelport.outcomes.store import Store
    from modelport.settings import Settings

__all__ = ["experiments_app", "note_change"]

experiments_app = typer.Typer(help="A/B test experiments and outcomes recorded by the server.")

ModelArg = Annotated[str, typer.Argument(help="The model the experiment is about.")]
DbOpt = Annotated[
    Optional[Path],
    typer.Option(help="SQLite outcome store (default: <models>/.modelport/outcomes.db)."),
]
UrlOpt = Annotated[
    Optional[str], typer.Option(help="postgresql://... outcome store instead of SQLite.")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _store(models: Path | None, db: Path | None, url: str | None) -> tuple[Path, Store]:
    from modelport.outcomes.service import stored

    settings = _settings(models=models, outcomes_db=db, outcomes_url=url)
    return settings.models, stored(settings)


def note_change(settings: Settings, model: str, change: str, **details: object) -> None:
    """Note a rollout or rollback done from the command line in ``model``'s running experiment,
    as the admin API does, and print its warning. The change is made already: a store that
    cannot be read is a warning too, not a failure."""
    from modelport.errors import ModelportError
    from modelport.outcomes.service import note_offline

    try:
        warning = note_offline(settings, model, change, **details)
    except (ModelportError, OSError) as exc:
        warning = f"the {change} is done, but not noted in a running experiment: {exc}"
    if warning:
        err.print(f"[yellow]warning:[/] {warning}", highlight=False)


@experiments_app.command("start")
def start(
    model: ModelArg,
    name: Annotated[str, typer.Argument(help="A name, unique for the model.")],
    traffic: Annotated[
        Optional[str], typer.Option(help='The split, as JSON: {"split": [...]} (published).')
    ] = None,
    metric: Annotated[
        Optional[str], typer.Option(help="accuracy, mae, or value (the /feedback value).")
    ] = None,
    db: DbOpt = None,
    url: UrlOpt = None,
    models: ModelsOpt = None,
) -> None:
    """Start experiment NAME of MODEL now (and set its traffic policy with --traffic)."""
    from pydantic import ValidationError

    from modelport.core.validation import invalid_input
    from modelport.errors import BadRequest
    from modelport.outcomes import experiments
    from modelport.traffic.state import publish

    try:
        spec = experiments.ExperimentIn.model_validate(
            {"name": name, "metric": metric, "traffic": _json(traffic)}
        )
    except ValidationError as exc:
        raise invalid_input(exc) from exc
    repository, store = _store(models, db, url)
    try:
        if spec.traffic is not None:
            if experiments.running(store, model) is not None:
                experiments.start(store, model, spec)  # the precise 409, before any change
            if not (repository / model).is_dir():
                raise BadRequest(f"no model folder {repository / model}: --traffic needs one")
            publish(repository / model, traffic=spec.traffic)
        started = experiments.start(store, model, spec)
    finally:
        store.close()
    err.print(f"experiment {started.name!r} of {model} started.")


def _json(text: str | None) -> object:
    import orjson

    from modelport.errors import BadRequest

    if text is None:
        return None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"--traffic is not valid JSON: {exc}") from exc


@experiments_app.command("stop")
def stop(
    model: ModelArg,
    name: Annotated[Optional[str], typer.Argument(help="Only if it is this one.")] = None,
    db: DbOpt = None,
    url: UrlOpt = None,
    models: ModelsOpt = None,
) -> None:
    """Stop the running experiment of MODEL (its traffic policy stays as it is)."""
    from modelport.outcomes import experiments

    _, store = _store(models, db, url)
    try:
        stopped = experiments.stop(store, model, name)
    finally:
        store.close()
    err.print(f"experiment {stopped.name!r} of {model} stopped.")


@experiments_app.command("list")
def listed(
    model: Annotated[Optional[str], typer.Argument(help="Only this model's.")] = None,
    db: DbOpt = None,
    url: UrlOpt = None,
    models: ModelsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List experiments, the newest first."""
    import orjson
    from rich.table import Table

    from modelport.outcomes import experiments

    _, store = _store(models, db, url)
    try:
        found = experiments.listed(store, model)
    finally:
        store.close()
    if as_json:
        out.print_json(orjson.dumps([e.model_dump(mode="json") for e in found]).decode())
        return
    table = Table(title="Experiments")
    for column in ("model", "name", "state", "metric", "traffic changes"):
        table.add_column(column)
    for e in found:
        state = "running" if e.running else "stopped"
        table.add_row(e.model, e.name, state, e.metric or "-", str(len(e.events)))
    out.print(table)


@experiments_app.command("report")
def report(
    model: Annotated[str, typer.Argument(help="The model whose variants to compare.")],
    experiment: Annotated[
        Optional[str], typer.Option(help="A named experiment (default: the running one).")
    ] = None,
    db: DbOpt = None,
    url: UrlOpt = None,
    models: ModelsOpt = None,
    min_samples: Annotated[int, typer.Option(help="Feedback per variant before a verdict.")] = 30,
    as_json: JsonOpt = False,
) -> None:
    """Print an A/B test's report: per variant, the difference, its p-values and a verdict."""
    from modelport.outcomes.service import stored_report
    from modelport.outcomes.table import report_tables

    settings = _settings(models=models, outcomes_db=db, outcomes_url=url)
    found = stored_report(settings, model, min_samples, experiment)
    if as_json:
        out.print_json(found.model_dump_json())
    else:
        out.print(report_tables(found))
