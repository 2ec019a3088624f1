"""``modelport import``: copy a model file (or an MLflow registry version) into the repository,
pin its hash, write its card.

Importing is the user's statement that the file is trusted: it is loaded once here (which runs any
code a pickle carries) to check it and derive its signature, and from then on it loads only while
its bytes keep the pinned hash.

The card is generated from the model, with the names the model cannot tell (``--feature-names``,
``--class-names``) and examples, bounds and categories from data (``--example-from``); or it is
given whole (``--card``, written by :func:`modelport.card_from`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from modelport.core.freeze import import_registry_version
from modelport.core.repository import check_name
from modelport.core.versions import add_version
from modelport.errors import ConfigError
from modelport.model.card import CARD_FILE, ModelCard, read_card
from modelport.model.datacard import described, header, named_inputs, read_columns
from modelport.model.signature import CardSignature, ModelFacts, OutputSpec, resolve_signature
from modelport.runtimes import LoadContext, get_runtime, runtime_for_file

__all__ = ["CardOptions", "import_model", "import_registry_version"]


@dataclass(frozen=True)
class CardOptions:
    """What the user says about the model that the model cannot say itself."""

    description: str | None = None
    class_names: list[str] | None = None
    feature_names: list[str] | None = None
    feature_names_from: Path | None = None
    example_from: Path | None = None
    card: Path | None = None

    @property
    def given(self) -> list[str]:
        flags = {
            "--description": self.description,
            "--class-names": self.class_names,
            "--feature-names": self.feature_names,
            "--feature-names-from": self.feature_names_from,
            "--example-from": self.example_from,
            "--card": self.card,
        }
        return [flag for flag, value in flags.items() if value is not None]

    def names(self) -> list[str] | None:
        if self.feature_names is not None and self.feature_names_from is not None:
            raise ConfigError("give --feature-names or --feature-names-from, not both")
        if self.feature_names_from is not None:
            return header(self.feature_names_from)
        return self.feature_names


def _check_classes(names: list[str] | None, facts: ModelFacts) -> None:
    if not names:
        return
    if facts.kind == "regression":
        raise ConfigError("--class-names given, but the model is a regression model")
    known = facts.classes
    if known is not None and len(names) != len(known):
        raise ConfigError(
            f"{len(names)} class names given ({', '.join(names)}), but the model has "
            f"{len(known)} classes: {', '.join(map(str, known))} (name them in that order)"
        )


def _generated(runtime: str, facts: ModelFacts, options: CardOptions) -> ModelCard:
    """A card from the model's facts and the user's names and data; checked against the model."""
    inputs = named_inputs(facts, options.names())
    if options.example_from is not None:
        columns = read_columns(options.example_from, [f.name for f in inputs])
        inputs = described(inputs, columns, str(options.example_from))
    _check_classes(options.class_names, facts)
    output = OutputSpec(class_names=options.class_names) if options.class_names else None
    signature = resolve_signature(CardSignature(inputs=inputs, output=output), facts)
    return ModelCard(
        runtime=runtime,
        description=options.description,
        signature=CardSignature(inputs=signature.inputs, output=output),
    )


def _given_card(options: CardOptions, existing: Path) -> ModelCard | None:
    """The card the model is checked against before it is imported, if there is one."""
    given = options.given
    if existing.is_file():
        if given:
            raise ConfigError(
                f"{existing.parent.name} already has a card ({existing}), which the new version "
                f"must fit; {', '.join(given)} would change it: edit the card instead, or "
                "import under another --name"
            )
        return read_card(existing)
    if options.card is not None:
        if len(given) > 1:
            raise ConfigError(f"--card holds the whole card: leave out {', '.join(given[1:])}")
        if not options.card.is_file():
            raise ConfigError(f"{options.card}: no such card file")
        return read_card(options.card)
    return None


def import_model(
    file: Path,
    repository: Path,
    name: str,
    *,
    version: int | None = None,
    options: CardOptions | None = None,
) -> Path:
    """Import ``file`` as a new version of model ``name``; returns the artifact's new path.

    A model that already has a card keeps it (the file is checked against it); otherwise the
    card is ``options.card`` or one generated from the model and ``options``.
    """
    options = options or CardOptions()
    check_name(name)
    if not file.is_file():
        raise ConfigError(f"{file}: no such file")
    runtime_name = runtime_for_file(file)
    if runtime_name is None:
        raise ConfigError(f"{file}: no installed runtime reads {file.suffix or 'such'} files")
    existing = repository / name / CARD_FILE
    card = _given_card(options, existing)
    check = card or ModelCard(runtime=runtime_name)
    runtime = get_runtime(check.runtime or runtime_name)()
    facts = runtime.load(LoadContext(file, check, trusted=True))
    try:
        if card is not None:
            resolve_signature(card.signature, facts)  # refuses a card the model contradicts
            new_card = None if existing.is_file() else card
        else:
            new_card = _generated(runtime_name, facts, options)
    finally:
        runtime.unload()
    return add_version(repository, name, file, new_card, version)
