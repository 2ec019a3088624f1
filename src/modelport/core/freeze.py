"""MLflow registry versions frozen into a folder repository: ``modelport import
models:/NAME/VERSION`` and the build context of a repository whose cards name registry sources.

The version is fetched into the registry cache (pinned at first download, refused when a cached
file changed since), then copied into ``<repository>/<name>/<version>/`` with every file pinned
as trusted: copying it is the user's statement that it is trusted, as for any import. Its card
needs no registry: no ``source``, no ``follow``, and no canary or shadow template (those were for
the versions an alias would move to; a frozen model has one version).
"""

from __future__ import annotations

from pathlib import Path

from modelport.core.repository import check_name
from modelport.core.versions import add_folder_version
from modelport.model.card import CARD_FILE, ModelCard
from modelport.model.integrity import is_trusted
from modelport.model.pins import Pins

__all__ = ["frozen_card", "import_registry_version"]


def frozen_card(card: ModelCard) -> ModelCard:
    """``card`` (a registry version's, completed by the repository's card that named the
    source) as a folder model's card."""
    traffic = card.traffic
    if traffic is not None:  # templates for the versions an alias would move to: one version now
        traffic = traffic.model_copy(update={"canary": None, "shadow": None})
        traffic = traffic if traffic.versions() else None
    return card.model_copy(update={"source": None, "follow": "switch", "traffic": traffic})


def import_registry_version(
    uri: str,
    repository: Path,
    name: str | None = None,
    version: int | None = None,
    *,
    card: ModelCard | None = None,
    pins: Pins | None = None,
    trusted: list[Path] | None = None,
) -> Path:
    """Copy an MLflow registry version (``models:/NAME/VERSION`` or ``models:/NAME@ALIAS``, the
    version it names now) into ``repository/<name>/<version>/``, every file pinned (in ``pins``,
    default: the repository's), with a card that needs no registry: ``card`` completed by the
    version's own (a repository's card that named ``uri``), else the version's own.

    The version number defaults to the registry's; returns the version folder. With
    ``trusted`` (a build's ``--trust``), a version that loads only by running code it carries
    is refused unless trusted there; without it, importing is the user's statement of trust.
    """
    from modelport.sources.registry import (
        fetch_version,
        parse_uri,
        resolve,
        untrusted_refusal,
        version_entry,
    )

    ref = parse_uri(uri)
    number = resolve(ref)
    folder = fetch_version(ref.name, number)
    base = card.model_copy(update={"source": uri}) if card is not None else None
    artifact, version_card = version_entry(folder, base)  # refused when cached files changed
    if trusted is not None and not is_trusted(artifact, trusted):
        refusal = untrusted_refusal(version_card, artifact)
        if refusal is not None:
            raise refusal
    name = check_name(name or ref.name)
    existing = repository / name / CARD_FILE
    if base is None or base.description is None:
        description = f"models:/{ref.name}/{number}, imported"
        version_card = version_card.model_copy(update={"description": description})
    generated = frozen_card(version_card)
    return add_folder_version(
        repository,
        name,
        folder,
        None if existing.is_file() else generated,
        version or number,
        pins,
        leave_out=frozenset({CARD_FILE}),  # the cache's card, which names the registry source
    )
