"""scikit-learn runtime: any estimator or Pipeline with ``predict`` (and ``predict_proba``).

Pickle and joblib files load only when their sha256 is pinned or the path is trusted
(:mod:`modelport.model.integrity`); ``.skops`` files load through skops' trusted-type check.
Random forests and extra trees, alone or ending a Pipeline, answer through their trees' tables
(:mod:`._forest`), and a LogisticRegression from its coefficients (:mod:`._linear`): what their
own ``predict_proba`` answers, bit for bit, several times faster.
"""

from __future__ import annotations

import io
import warnings
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import joblib
import numpy as np
from sklearn import base

from modelport.errors import MissingExtra, ModelLoadError, ModelportError, UntrustedArtifact
from modelport.hints import pip_extra, trust
from modelport.model.integrity import read_verified
from modelport.model.signature import FieldType, ModelFacts
from modelport.runtimes import EXTRAS, LoadContext, Outputs, Runtime
from modelport.runtimes._forest import Forest, forest_of
from modelport.runtimes._linear import Linear, linear_of

__all__ = ["SklearnRuntime", "facts_of"]

_TEXT_MODULE = "sklearn.feature_extraction.text"

# Final estimators whose ``predict`` is exactly the class with the highest probability, so one
# ``predict_proba`` call gives both (half the cost for forests).
_ARGMAX_MODULES = (
    "sklearn.ensemble._forest",
    "sklearn.ensemble._gb",
    "sklearn.ensemble._hist_gradient_boosting",
    "sklearn.tree",
    "sklearn.linear_model._logistic",
    "sklearn.naive_bayes",
    "sklearn.neighbors",
)


def _load_skops(data: bytes, context: LoadContext) -> Any:
    import skops.io as sio

    untrusted = sio.get_untrusted_types(data=data)
    if untrusted and not context.trusted:
        raise UntrustedArtifact(
            f"refusing to load {context.artifact}: it contains types skops does not trust by "
            f"default: {', '.join(untrusted)}. If you trust them, {trust(context.artifact)}"
        )
    return sio.loads(data, trusted=untrusted or None)


def _categorical_columns(model: Any) -> tuple[dict[str, FieldType], dict[str, list[str]]]:
    """Inputs a ColumnTransformer encodes as categories of text: their type, and their allowed
    values when the encoder refuses unknown ones."""
    types: dict[str, FieldType] = {}
    choices: dict[str, list[str]] = {}
    transformer = _first_step(model)
    for _, part, columns in getattr(transformer, "transformers_", []):
        steps = [s for _, s in getattr(part, "steps", [])] or [part]
        encoder = next((s for s in steps if hasattr(s, "categories_")), None)
        if encoder is None or not isinstance(columns, list | tuple):
            continue
        for column, categories in zip(columns, encoder.categories_, strict=False):
            if not isinstance(column, str) or categories.dtype.kind not in "OUS":
                continue
            types[column] = "str"
            if getattr(encoder, "handle_unknown", "error") == "error":
                choices[column] = [str(c) for c in categories]
    return types, choices


def _needs_frame(model: Any) -> bool:
    """Whether the model selects columns by name (a ColumnTransformer), which only a pandas
    DataFrame can give it."""
    for _, _, columns in getattr(_first_step(model), "transformers_", []):
        names = [columns] if isinstance(columns, str) else columns
        if isinstance(names, list | tuple) and any(isinstance(c, str) for c in names):
            return True
    return False


def _check_pandas(path: Path, model: Any) -> None:
    if _needs_frame(model) and find_spec("pandas") is None:
        raise MissingExtra(
            f"{path}: it selects its columns by name, which needs a pandas DataFrame, and pandas "
            f"is not installed: {pip_extra('pandas')}"
        )


def _is_pipeline(model: Any) -> bool:
    """A scikit-learn Pipeline (told by its class, so that this module need not import it)."""
    kind = type(model)
    return kind.__name__ == "Pipeline" and kind.__module__ == "sklearn.pipeline"


def _first_step(model: Any) -> Any:
    steps = getattr(model, "steps", None)
    return steps[0][1] if steps else model


def _final_step(model: Any) -> Any:
    steps = getattr(model, "steps", None)
    return steps[-1][1] if steps else model


def _missing(path: Path, exc: ModuleNotFoundError) -> ModelportError:
    """A pickle of a framework that is not installed (an ``XGBClassifier``, say): the hint."""
    package = (exc.name or "").partition(".")[0]
    if package in EXTRAS:
        return MissingExtra(
            f"{path}: it pickles a {package} model and {package} is not installed: "
            f"{pip_extra(EXTRAS[package])}"
        )
    return ModelLoadError(f"{path}: unpickling it needs the module {exc.name!r}, not installed")


def facts_of(model: Any) -> ModelFacts:
    """What a fitted estimator or Pipeline tells about its inputs and outputs."""
    return SklearnRuntime()._facts(model)


class SklearnRuntime(Runtime):
    name = "sklearn"
    suffixes = (".joblib", ".pkl", ".pickle", ".skops")

    def __init__(self) -> None:
        self.model: Any = None
        self._argmax = False
        self._proba = False
        self._columns: list[str] | None = None
        self._text = False
        self._fast: Forest | Linear | None = None  # the model, or its Pipeline's last step
        self._head: list[Any] = []  # the Pipeline's transformers before that step

    def load(self, context: LoadContext) -> ModelFacts:
        path = context.artifact
        if path.suffix.lower() == ".skops":
            model = _load_skops(path.read_bytes(), context)
        else:
            data = read_verified(path, trusted=context.trusted, pins=context.pins)
            try:
                model = joblib.load(io.BytesIO(data))
            except ModuleNotFoundError as exc:
                raise _missing(path, exc) from exc
            except Exception as exc:
                raise ModelLoadError(
                    f"{path}: not a readable joblib/pickle file ({type(exc).__name__}: {exc})"
                ) from exc
        if not callable(getattr(model, "predict", None)):
            raise ModelLoadError(f"{path}: {type(model).__name__} has no predict method")
        _check_pandas(path, model)
        self.model = model
        self._fast, self._head = _fast_of(model), []
        if self._fast is None and _is_pipeline(model):
            self._fast = _fast_of(model.steps[-1][1])
            # the steps before it, as Pipeline.predict_proba runs them (no fitted check of its own)
            self._head = [s for _, s in model.steps[:-1] if s is not None and s != "passthrough"]
        return self._facts(model)

    def _facts(self, model: Any) -> ModelFacts:
        names = getattr(model, "feature_names_in_", None)
        self._columns = [str(n) for n in names] if names is not None else None
        n_features = getattr(model, "n_features_in_", None)
        classes = getattr(model, "classes_", None)
        is_classifier = bool(base.is_classifier(model)) or classes is not None
        self._proba = is_classifier and callable(getattr(model, "predict_proba", None))
        final_module = type(_final_step(model)).__module__
        self._argmax = self._proba and final_module.startswith(_ARGMAX_MODULES)
        self._text = type(_first_step(model)).__module__.startswith(_TEXT_MODULE)
        if self._text:  # a text pipeline takes a 1-D sequence of strings
            n_features = 1
        field_types, field_choices = _categorical_columns(model)
        return ModelFacts(
            n_features=int(n_features) if n_features is not None else None,
            input_type="str" if self._text else None,
            field_types=field_types,
            field_choices=field_choices,
            feature_names=self._columns,
            kind="classification" if is_classifier else "regression",
            classes=[c.item() if hasattr(c, "item") else c for c in classes]
            if classes is not None
            else None,
            has_probabilities=self._proba,
        )

    def _frame(self, rows: np.ndarray) -> Any:
        if self._text:
            return rows[:, 0].tolist()
        if self._columns is None:
            return rows
        try:
            import pandas as pd
        except ImportError:
            return None
        return pd.DataFrame(rows, columns=self._columns).infer_objects()

    def _predict(self, x: Any) -> Outputs:
        model = self.model
        fast = self._fast
        if fast is not None and model is not fast.model:  # a Pipeline ending in a fast step
            for step in self._head:  # as the Pipeline's own predict_proba does
                x = step.transform(x)
            answer = fast(x)
            if answer is not None:
                return _fast_outputs(fast, answer)
            model = _final_step(model)  # the transformed rows go on to that step itself
        if not self._proba:
            return Outputs(predictions=np.asarray(model.predict(x)))
        proba = np.asarray(model.predict_proba(x))
        if self._argmax:
            predictions = np.asarray(model.classes_)[proba.argmax(axis=1)]
        else:
            predictions = np.asarray(model.predict(x))
        return Outputs(predictions=predictions, probabilities=proba)

    def predict(self, rows: np.ndarray) -> Outputs:
        fast = self._fast
        if fast is not None and fast.model is self.model:  # a bare model: rows as they are
            answer = fast(rows)
            if answer is not None:
                return _fast_outputs(fast, answer)
        x = self._frame(rows)
        if x is not None:
            return self._predict(x)
        # A model fitted on a DataFrame, and no pandas here: an array works, with a warning that
        # says nothing useful (the columns are already in the model's order).
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="X does not have valid feature names")
            return self._predict(rows)

    def unload(self) -> None:
        self.model = None
        self._fast, self._head = None, []


def _fast_of(model: Any) -> Forest | Linear | None:
    """The fast reading of a forest or a LogisticRegression (``None`` for other models)."""
    return forest_of(model) or linear_of(model)


def _fast_outputs(fast: Forest | Linear, answer: np.ndarray) -> Outputs:
    """A fast answer as predictions (the most probable class, as ``predict`` picks it) and
    probabilities."""
    if fast.classes is None:
        return Outputs(predictions=answer)
    return Outputs(predictions=fast.classes[answer.argmax(axis=1)], probabilities=answer)
