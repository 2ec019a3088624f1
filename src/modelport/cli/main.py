"""The ``modelport`` command. Parsing happens here only; each command calls a library function."""

# typer reads the annotations at run time and needs Optional[...] on Python 3.10:
# ruff: noqa: UP045

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Annotated, Optional, cast

import typer
from pydantic import ValidationError
from rich.markup import escape
from rich.table import Table

from modelport._version import __version__
from modelport.cli.experiments import experiments_app, note_change
from modelport.cli.options import PathArg, RepoOpt, TrustOpt, err, out
from modelport.cli.options import settings as _settings
from modelport.cli.pin import pin_command
from modelport.cli.ship import build, deploy
from modelport.errors import InvalidInput, ModelportError
from modelport.hints import rerun_with_trust

__all__ = ["app", "main"]

app = typer.Typer(
    name="modelport",
    rich_markup_mode=None,
    help="Serve any trained model as a validated, documented HTTP API.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
examples_app = typer.Typer(help="Example models trained offline from bundled datasets.")
app.add_typer(examples_app, name="examples")
app.add_typer(experiments_app, name="experiments")
app.command("pin")(pin_command)


def _ensure_default_repository(path: Path, explicit: bool) -> None:
    """Train the Iris example into ``path`` the first time ``serve`` runs without a model."""
    if explicit or (path.exists() and any(path.iterdir())):
        return
    from modelport.cli.examples import train_example

    err.print(
        f"[bold]No model repository at {path}/[/]: training the Iris example "
        "(scikit-learn load_iris, LogisticRegression) ..."
    )
    artifact = train_example("iris", path)
    err.print(f"Trained and saved {artifact} (sha256 pinned). Serving it.")


def _print_version(value: bool) -> None:
    if value:
        out.print(f"modelport {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version."
        ),
    ] = False,
) -> None:
    """Serve any trained model as a validated, documented HTTP API."""


@app.command()
def serve(
    path: PathArg = None,
    host: Annotated[Optional[str], typer.Option(help="Bind address (default 0.0.0.0).")] = None,
    port: Annotated[Optional[int], typer.Option(help="Port (default: $PORT or 8000).")] = None,
    workers: Annotated[
        Optional[int], typer.Option(help="Worker processes, gunicorn when > 1 (default 1).")
    ] = None,
    default_model: Annotated[
        Optional[str], typer.Option(help="Model answering the bare /predict.")
    ] = None,
    trust: TrustOpt = None,
    log_level: Annotated[Optional[str], typer.Option(help="info, debug, warning ...")] = None,
    grpc_port: Annotated[
        Optional[int], typer.Option(help="Also serve gRPC (Open Inference Protocol) here.")
    ] = None,
) -> None:
    """Serve a model file or a model repository over HTTP (and gRPC with --grpc-port)."""
    from modelport.server.run import serve as run_server

    settings = _settings(
        models=path,
        host=host,
        port=port,
        workers=workers,
        default_model=default_model,
        trust=trust,
        log_level=log_level,
        grpc_port=grpc_port,
    )
    _ensure_default_repository(settings.models, explicit=path is not None)
    run_server(settings)


def _names(value: Optional[str]) -> Optional[list[str]]:
    return [n.strip() for n in value.split(",")] if value is not None else None


@app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(help="A model file you trust, or models:/NAME/VERSION")],
    name: Annotated[Optional[str], typer.Option(help="Model name in the repository.")] = None,
    repo: RepoOpt = Path("models"),
    version: Annotated[Optional[int], typer.Option(help="Version (default: the next one).")] = None,
    description: Annotated[Optional[str], typer.Option()] = None,
    class_names: Annotated[
        Optional[str], typer.Option(help="Comma-separated class names, in class order.")
    ] = None,
    feature_names: Annotated[
        Optional[str], typer.Option(help="Comma-separated input names, in the model's order.")
    ] = None,
    feature_names_from: Annotated[
        Optional[Path], typer.Option(help="A CSV file whose header names the inputs.")
    ] = None,
    example_from: Annotated[
        Optional[Path],
        typer.Option(help="A CSV file of inputs: examples, bounds and categories come from it."),
    ] = None,
    card: Annotated[
        Optional[Path], typer.Option(help="A card file (modelport.card_from(...).save(FILE)).")
    ] = None,
) -> None:
    """Copy a model into the repository, pin its sha256 and write its card."""
    from modelport.cli.importer import CardOptions, import_model, import_registry_version
    from modelport.model.pins import Pins

    if str(file).startswith("models:/"):  # an MLflow registry version, every file pinned
        out.print(f"Imported {file} as {import_registry_version(str(file), repo, name, version)}")
        return
    if name is None:
        raise typer.BadParameter("--name is required to import a model file")
    options = CardOptions(
        description=description,
        class_names=_names(class_names),
        feature_names=_names(feature_names),
        feature_names_from=feature_names_from,
        example_from=example_from,
        card=card,
    )
    target = import_model(file, repo, name, version=version, options=options)
    lock = Pins.default(repo).lock
    if target == file:
        out.print(f"Pinned the sha256 of {target} in {lock}")
    else:
        out.print(f"Imported {file} as {target} (sha256 pinned in {lock})")


@app.command()
def validate(path: PathArg = None, trust: TrustOpt = None) -> None:
    """Load every model and run a sample prediction on each; exit 1 if any fails."""
    from modelport.cli.validate import validate_repository

    settings = _settings(models=path, trust=trust)
    rows = validate_repository(settings.models, settings.trust)
    table = Table(title=f"modelport validate {settings.models}")
    for column in ("model", "version", "runtime", "status", "load", "sample answer"):
        table.add_column(column)
    for row in rows:
        status = "[green]ready[/]" if row.ok else "[red]failed[/]"
        load = f"{row.load_seconds * 1000:.0f} ms" if row.load_seconds is not None else "-"
        detail = json.dumps(row.answer) if row.answer else (row.error or "")
        table.add_row(row.model, str(row.version), row.runtime or "-", status, load, detail)
    out.print(table)
    for row in rows:  # one unwrapped line each, for logs and `modelport build`
        if not row.ok:
            err.print(f"{row.model} v{row.version} failed: {row.error}", soft_wrap=True)
    if not all(r.ok for r in rows):
        raise typer.Exit(1)


@app.command()
def predict(
    path: PathArg = None,
    model: Annotated[
        Optional[str], typer.Option(help="Model name (default: the default model).")
    ] = None,
    version: Annotated[Optional[int], typer.Option()] = None,
    data: Annotated[Optional[str], typer.Option(help="One JSON object of field values.")] = None,
    input: Annotated[
        Optional[Path], typer.Option(help="A .csv, .json or .jsonl file of records.")
    ] = None,
    output: Annotated[
        Optional[Path], typer.Option(help="Write answers here, .csv or .jsonl (default: stdout).")
    ] = None,
    on_error: Annotated[
        str, typer.Option(help="A row that does not fit: fail (stop) or skip (list it, go on).")
    ] = "fail",
    errors: Annotated[
        Optional[Path],
        typer.Option(help="Where skipped rows are listed (default: <output>.errors.csv)."),
    ] = None,
    force: Annotated[
        bool, typer.Option(help="Replace --output and --errors if they exist (else refused).")
    ] = False,
    trust: TrustOpt = None,
) -> None:
    """Predict offline, without a server: one record (--data) or a file of them (--input)."""
    from modelport.cli.predict import Outputs, load_for_predict, predict_one, score_file

    if (data is None) == (input is None):
        raise typer.BadParameter("give exactly one of --data or --input")
    if on_error not in ("fail", "skip"):
        raise typer.BadParameter("--on-error is fail or skip")
    files = None
    if input is not None:  # refused before the model loads and the scoring starts
        files = Outputs.of(input, output, errors, skip=on_error == "skip", force=force)
    plane, loaded = load_for_predict(_settings(models=path, trust=trust), model, version)
    if files is None:
        print(json.dumps(predict_one(plane, loaded, cast(str, data)), ensure_ascii=False))
        return
    summary = score_file(loaded, files, err)
    if summary:
        err.print(summary, highlight=False, soft_wrap=True)


@examples_app.command("train")
def examples_train(
    example: Annotated[str, typer.Argument(help="iris, wine, digits, sentiment or embeddings")],
    repo: RepoOpt = Path("models"),
    framework: Annotated[
        Optional[str], typer.Option(help="Framework to train with (default: the example's first).")
    ] = None,
    estimator: Annotated[str, typer.Option(help="logistic or forest (scikit-learn)")] = "logistic",
    name: Annotated[
        Optional[str], typer.Option(help="Model name (default: the example's).")
    ] = None,
) -> None:
    """Train an example model into the repository (deterministic, offline)."""
    from modelport.cli.examples import frameworks, train_example

    if estimator not in ("logistic", "forest"):
        raise typer.BadParameter("estimator is logistic or forest")
    before = set(repo.glob("*/*")) if repo.is_dir() else set()
    try:
        framework = framework or frameworks(example)[0]
        target = train_example(
            example,
            repo,
            framework=framework,
            name=name,
            estimator=estimator,  # type: ignore[arg-type]
        )
    except InvalidInput as exc:
        raise typer.BadParameter(exc.message) from exc
    what = estimator if framework == "sklearn" else framework
    if target.parent in before:  # training is deterministic: the very same model
        out.print(f"{target} already holds {example} ({what}): nothing added")
    else:
        out.print(f"Trained {example} ({what}) into {target}")


@app.command()
def convert(
    path: PathArg = None,
    model: Annotated[Optional[str], typer.Option(help="Model name (default: the first).")] = None,
    version: Annotated[Optional[int], typer.Option(help="Version (default: the highest).")] = None,
    to: Annotated[str, typer.Option(help="Target format.")] = "onnx",
    trust: TrustOpt = None,
) -> None:
    """Write a scikit-learn, XGBoost or LightGBM model's ONNX twin next to it; check parity."""
    from modelport.cli.convert import TOLERANCE, convert_to_onnx

    if to != "onnx":
        raise typer.BadParameter("only --to onnx is supported")
    settings = _settings(models=path, trust=trust)
    parity = convert_to_onnx(settings.models, model, version, list(settings.trust))
    table = Table(title=f"parity of {parity.twin}")
    for column in ("sample rows", "same answer", "max |Δ probability|", "verdict"):
        table.add_column(column)
    verdict = "passed" if parity.passed else f"failed (needs 100 % and ≤ {TOLERANCE:g})"
    table.add_row(
        str(parity.rows), f"{parity.agreement:.2%}", f"{parity.max_abs_diff:.2e}", verdict
    )
    out.print(table)
    if parity.passed:
        out.print("With `runtime: auto` in the model card, modelport serves the ONNX twin.")
    else:
        raise typer.Exit(1)


app.command()(build)
app.command()(deploy)


@app.command()
def rollout(
    name: Annotated[str, typer.Argument(help="The model's name.")],
    version: Annotated[int, typer.Argument(help="The version to serve.", min=1)],
    path: PathArg = None,
    trust: TrustOpt = None,
) -> None:
    """Serve VERSION of NAME on every server of this repository, once it loads and warms."""
    from modelport.traffic.state import request_rollout

    settings = _settings(models=path, trust=trust)
    state = request_rollout(settings.models, name, version, tuple(settings.trust))
    target = f"v{state.previous}" if state.previous is not None else "none"
    err.print(f"{name} v{version} rolled out (rollback target: {target}).")
    note_change(settings, name, "rollout", version=version)


@app.command()
def rollback(
    name: Annotated[str, typer.Argument(help="The model's name.")],
    path: PathArg = None,
    trust: TrustOpt = None,
) -> None:
    """Serve again the version of NAME that served before its last rollout."""
    from modelport.traffic.state import request_rollback

    settings = _settings(models=path, trust=trust)
    state = request_rollback(settings.models, name, tuple(settings.trust))
    err.print(f"{name} rolled back to v{state.active}.")
    note_change(settings, name, "rollback", version=state.active)


@app.command()
def version() -> None:
    """Print modelport's version."""
    out.print(f"modelport {__version__}")


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``modelport`` console script."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        app(args=argv, standalone_mode=True)
    except ModelportError as exc:
        message = rerun_with_trust(exc.message, sys.argv[1:] if argv is None else argv)
        # escaped: hints like "pip install 'modelport[onnx]'" are not markup
        err.print(f"[red]error:[/] {escape(message)}", highlight=False, markup=True, soft_wrap=True)
        sys.exit(2)
    except ValidationError as exc:  # settings from the environment or flags
        for item in exc.errors(include_url=False):
            where = ".".join(str(p) for p in item["loc"]).lower()
            err.print(
                f"[red]invalid setting[/] {where}: {item['msg']} (got {item.get('input')!r})",
                highlight=False,
            )
        sys.exit(2)
