"""The ``sklearn`` flavor: estimators and pipelines in skops' secure format.

A pickle runs arbitrary code when it is loaded, so models are stored with ``skops.io``,
which rebuilds only types it is told to trust. On load, skops lists the types in the
file that it does not trust by default; those from scikit-learn, NumPy and SciPy
themselves are accepted (they are the estimators' own building blocks), anything else
(a user's class or function inside a pipeline) is refused unless the caller passes
``trusted=True``. A pickle or joblib file (``.pkl``, ``.pickle``, ``.joblib``; also how
MLflow stores sklearn models) is saved and loaded only with ``trusted=True``.

Prediction: a binary classifier with ``predict_proba`` gives the probability of the
positive class (``classes_[1]``); every other estimator gives what ``predict`` gives.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow as pa

from featurestore.errors import ModelError
from featurestore.models.flavors.base import Predictor, is_instance_of, library_version, require, type_path
from featurestore.models.flavors.tabular import call_model, feature_matrix, select_features

__all__ = ["SklearnFlavor"]

_PICKLE_SUFFIXES = (".pkl", ".pickle", ".joblib")
_SAFE_MODULES = ("sklearn", "numpy", "scipy")


class SklearnFlavor:
    name = "sklearn"
    extra = "sklearn"

    def accepts(self, model: object) -> bool:
        return is_instance_of(model, "sklearn", ("BaseEstimator",))

    def save(self, model: object, folder: Path, *, trusted: bool = False, source: dict | None = None) -> dict:
        sklearn, sio = require("sklearn", "sklearn", "sklearn", "skops.io")
        if isinstance(model, (str, Path)):
            name, fmt = _save_file(Path(model), folder, trusted)
        else:
            if not self.accepts(model):
                raise ModelError(f"cannot save {type_path(model)} with the sklearn flavor: not a scikit-learn "
                                 f"estimator")
            name, fmt = "model.skops", "skops"
            try:
                sio.dump(model, folder / name)
            except Exception as exc:
                raise ModelError(f"cannot save {type_path(model)} with skops (an unpicklable object inside it?): "
                                 f"{type(exc).__name__}: {exc}") from None
        meta = {"file": name, "format": fmt, "sklearn_version": sklearn.__version__,
                "skops_version": library_version("skops")}
        # Load it back now, so an estimator that cannot be restored is refused at registration.
        estimator = _load(folder, meta, trusted)
        meta["estimator"] = type_path(estimator)
        return meta | ({"source": source} if source else {})

    def load(self, folder: Path, meta: dict, *, trusted: bool = False) -> Predictor:
        require("sklearn", "sklearn", "sklearn", "skops.io")
        return _Predictor(_load(Path(folder), meta, trusted))


class _Predictor:
    def __init__(self, estimator):
        self.estimator = estimator
        classes = getattr(estimator, "classes_", None)
        self._proba = hasattr(estimator, "predict_proba") and classes is not None and len(classes) == 2
        self._label = f"sklearn model {type_path(estimator)}"
        self._names = getattr(estimator, "feature_names_in_", None)

    def predict(self, features: pa.Table) -> list:
        if not features.num_rows:
            return []
        if self._names is None:
            return self.predict_matrix(feature_matrix(features))
        return self._call(_frame(select_features(features, list(self._names), self._label)), features.num_rows)

    def takes_matrix(self, columns: tuple[str, ...]) -> bool:
        return self._names is None  # one fitted on a named frame gets a frame

    def predict_matrix(self, matrix) -> list:
        return self._call(matrix, len(matrix)) if len(matrix) else []

    def _call(self, data, n: int) -> list:
        if self._proba:
            return call_model(lambda d: self.estimator.predict_proba(d)[:, 1], data, n, self._label)
        return call_model(self.estimator.predict, data, n, self._label)


def _frame(table: pa.Table):
    """A model fitted on a named frame gets one (ColumnTransformer selects by name)."""
    try:
        import pandas  # noqa: F401 - only to know whether to_pandas works
    except ImportError:
        return table  # scikit-learn >= 1.6 reads Arrow tables itself
    return table.to_pandas()


def _save_file(path: Path, folder: Path, trusted: bool) -> tuple[str, str]:
    if not path.is_file():
        raise ModelError(f"cannot save sklearn model {str(path)!r}: no such file")
    suffix = path.suffix.lower()
    if suffix in _PICKLE_SUFFIXES:
        if not trusted:
            raise ModelError(f"refusing to register pickle file {str(path)!r}: loading a pickle runs any code it "
                             f"holds; pass trusted=True if you trust its source, or save the model with skops")
        shutil.copyfile(path, folder / f"model{suffix}")
        return f"model{suffix}", "pickle"
    if suffix == ".skops":
        shutil.copyfile(path, folder / "model.skops")
        return "model.skops", "skops"
    raise ModelError(f"cannot save {str(path)!r} with the sklearn flavor: expected a .skops file, or a .pkl/.joblib "
                     f"file with trusted=True")


def _load(folder: Path, meta: dict, trusted: bool):
    path = folder / meta["file"]
    if meta.get("format") == "pickle":
        if not trusted:
            raise ModelError(f"refusing to load pickle file {meta['file']}: loading a pickle runs any code it "
                             f"holds; pass trusted=True if you trust this model's source")
        (joblib,) = require("sklearn", "sklearn", "joblib")
        try:
            return joblib.load(path)
        except Exception as exc:
            raise ModelError(f"cannot load pickle {meta['file']}: {type(exc).__name__}: {exc}") from None
    (sio,) = require("sklearn", "sklearn", "skops.io")
    reported = sio.get_untrusted_types(file=path)
    local = [t for t in reported if t.startswith("__main__.") or "<lambda>" in t or "<locals>" in t]
    if local:
        raise ModelError(f"cannot restore {', '.join(local)} from {meta['file']}: a lambda, or a function or class "
                         f"defined in a script or inside a function, cannot be imported when the model loads (an "
                         f"unpicklable object); move it to a module in the repo")
    unknown = [t for t in reported if t.split(".")[0] not in _SAFE_MODULES]
    if unknown and not trusted:
        raise ModelError(f"refusing to load {meta['file']}: it holds types skops does not trust "
                         f"({', '.join(unknown)}); pass trusted=True if you trust this model's source")
    try:
        return sio.load(path, trusted=reported)
    except Exception as exc:
        raise ModelError(f"cannot load {meta['file']} with skops: {type(exc).__name__}: {exc}") from None
