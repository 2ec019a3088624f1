"""``modelport import``: copy a model file (or an MLflow registry version) into the repository,
pin its hash, write its card.

Importing is the user's statement that the file is trusted: it is loaded once here (which runs any
code a pickle carries) to check it and derive its signature, and from then on it loads only while
its bytes keep the pinned hash.
"""

from __future__ import annotations

from pathlib import Path

from modelport.core.repository import add_folder_version, add_version, check_name
from modelport.errors import ConfigError
from modelport.model.card import CARD_FILE, ModelCard, read_card
from modelport.model.signature import CardSignature, OutputSpec, resolve_signature
from modelport.runtimes import LoadContext, get_runtime, runtime_for_file

__all__ = ["import_model", "import_registry_version"]


def _generated_card(
    runtime: str, description: str | None, class_names: list[str] | None
) -> ModelCard:
    output = OutputSpec(class_names=class_names) if class_names else None
    return ModelCard(
        runtime=runtime,
        description=description,
        signature=CardSignature(output=output) if output else None,
    )


def import_model(
    file: Path,
    repository: Path,
    name: str,
    *,
    version: int | None = None,
    description: str | None = None,
    class_names: list[str] | None = None,
) -> Path:
    """Import ``file`` as a new version of model ``name``; returns the artifact's new path.

    A model that already has a card keeps it; otherwise a card is generated from the model.
    """
    check_name(name)
    if not file.is_file():
        raise ConfigError(f"{file}: no such file")
    runtime_name = runtime_for_file(file)
    if runtime_name is None:
        raise ConfigError(f"{file}: no installed runtime reads {file.suffix or 'such'} files")
    existing = repository / name / CARD_FILE
    card = read_card(existing) if existing.is_file() else None
    check = card or _generated_card(runtime_name, description, class_names)
    runtime = get_runtime(check.runtime or runtime_name)()
    facts = runtime.load(LoadContext(file, check, trusted=True))
    signature = resolve_signature(check.signature, facts)  # refuses a card the model contradicts
    runtime.unload()
    if card is None:
        inputs = signature.inputs
        check = check.model_copy(
            update={"signature": CardSignature(inputs=inputs, output=signature.output)}
        )
    return add_version(repository, name, file, None if card else check, version)


def import_registry_version(
    uri: str, repository: Path, name: str | None = None, version: int | None = None
) -> Path:
    """Copy an MLflow registry version (``models:/NAME/VERSION`` or ``models:/NAME@ALIAS``) into
    ``repository/<name>/<version>/``, every file pinned, with a card that needs no registry.

    The version number defaults to the registry's; returns the version folder.
    """
    from modelport.sources.registry import fetch_version, parse_uri, resolve, version_entry

    ref = parse_uri(uri)
    number = resolve(ref)
    folder = fetch_version(ref.name, number)
    _, card = version_entry(folder)  # refuses a cached version whose files changed
    name = check_name(name or ref.name)
    existing = repository / name / CARD_FILE
    generated = card.model_copy(
        update={"source": None, "description": f"models:/{ref.name}/{number}, imported"}
    )
    return add_folder_version(
        repository, name, folder, None if existing.is_file() else generated, version or number
    )
