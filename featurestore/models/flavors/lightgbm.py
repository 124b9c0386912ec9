"""The ``lightgbm`` flavor: a Booster or an sklearn-API model as LightGBM's text model file.

Saved with ``save_model`` (``model.txt``), or copied from a LightGBM model file (MLflow
names it ``model.lgb``). Loaded as a ``Booster`` and run with ``Booster.predict`` on the
columns in the order of the booster's feature names: a binary classifier gives the
probability of the positive class (what ``predict_proba`` gives in its second column),
a regressor its prediction, a multi-class model one row of probabilities.
"""

from __future__ import annotations

from pathlib import Path

from featurestore.errors import ModelError
from featurestore.models.flavors.base import Predictor, copy_model_file, is_instance_of, require, type_path
from featurestore.models.flavors.tabular import SMALL_BATCH, NamedFeatures, call_model

__all__ = ["LightGBMFlavor"]

_SUFFIXES = (".txt", ".lgb", ".model")



class LightGBMFlavor:
    name = "lightgbm"
    extra = "lightgbm"

    def accepts(self, model: object) -> bool:
        return is_instance_of(model, "lightgbm", ("Booster", "LGBMModel"))

    def save(self, model: object, folder: Path, *, trusted: bool = False, source: dict | None = None) -> dict:
        (lgb,) = require("lightgbm", "lightgbm", "lightgbm")
        if isinstance(model, (str, Path)):
            name = copy_model_file(model, folder, "lightgbm", _SUFFIXES)
        elif self.accepts(model):
            name = "model.txt"
            try:
                booster = model if isinstance(model, lgb.Booster) else model.booster_
                booster.save_model(str(folder / name))
            except Exception as exc:  # e.g. an sklearn-API model that was never fitted
                raise ModelError(f"cannot save {type_path(model)}: {type(exc).__name__}: {exc}") from None
        else:
            raise ModelError(f"cannot save {type_path(model)} with the lightgbm flavor: expected a lightgbm "
                             f"Booster, an LGBMClassifier/LGBMRegressor or a model file")
        booster = _booster(lgb, folder / name)
        meta = {"file": name, "lightgbm_version": lgb.__version__, "feature_names": booster.feature_name()}
        return meta | ({"source": source} if source else {})

    def load(self, folder: Path, meta: dict, *, trusted: bool = False) -> Predictor:
        (lgb,) = require("lightgbm", "lightgbm", "lightgbm")
        return _Predictor(_booster(lgb, Path(folder) / meta["file"]), meta["file"])


class _Predictor(NamedFeatures):
    def __init__(self, booster, name: str):
        self.booster = booster
        self._names = tuple(booster.feature_name())  # a call into the library each time: once
        self._label = f"lightgbm model {name}"

    def predict_matrix(self, matrix) -> list:
        n = len(matrix)
        if not n:
            return []
        predict = self.booster.predict if n >= SMALL_BATCH else self._predict_one_thread
        return call_model(predict, matrix, n, self._label)

    def _predict_one_thread(self, matrix):
        return self.booster.predict(matrix, num_threads=1)


def _booster(lgb, path: Path):
    try:
        return lgb.Booster(model_file=str(path))
    except Exception as exc:
        raise ModelError(f"lightgbm cannot load {path.name}: {type(exc).__name__}: {exc}") from None
