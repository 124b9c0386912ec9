"""The ``xgboost`` flavor: a Booster or an sklearn-API model in XGBoost's own format.

Saved with ``save_model`` as UBJSON (``model.ubj``), or copied from a ``.ubj``/``.json``
model file (``.xgb``/``.model``/``.bin`` too, as MLflow names them: XGBoost reads the
format from the content). Loaded as a ``Booster`` whatever was saved, and run with
``inplace_predict`` on the columns in the order of the booster's feature names: so a
classifier gives what its ``predict_proba`` gives for the positive class (the booster's
output), a regressor its prediction, and a multi-class model one row of probabilities.
"""

from __future__ import annotations

from pathlib import Path

from featurestore.errors import ModelError
from featurestore.models.flavors.base import Predictor, copy_model_file, is_instance_of, require, type_path
from featurestore.models.flavors.tabular import SMALL_BATCH, NamedFeatures, call_model

__all__ = ["XGBoostFlavor"]

_SUFFIXES = (".ubj", ".json", ".xgb", ".model", ".bin")


class XGBoostFlavor:
    name = "xgboost"
    extra = "xgboost"

    def accepts(self, model: object) -> bool:
        return is_instance_of(model, "xgboost", ("Booster", "XGBModel"))

    def save(self, model: object, folder: Path, *, trusted: bool = False, source: dict | None = None) -> dict:
        (xgb,) = require("xgboost", "xgboost", "xgboost")
        if isinstance(model, (str, Path)):
            name = copy_model_file(model, folder, "xgboost", _SUFFIXES)
        elif self.accepts(model):
            name = "model.ubj"
            try:
                booster = model if isinstance(model, xgb.Booster) else model.get_booster()
                booster.save_model(str(folder / name))
            except Exception as exc:  # e.g. an sklearn-API model that was never fitted
                raise ModelError(f"cannot save {type_path(model)}: {type(exc).__name__}: {exc}") from None
        else:
            raise ModelError(f"cannot save {type_path(model)} with the xgboost flavor: expected an xgboost Booster, "
                             f"an XGBClassifier/XGBRegressor or a model file")
        booster = _booster(xgb, folder / name)
        meta = {"file": name, "xgboost_version": xgb.__version__, "feature_names": booster.feature_names}
        return meta | ({"source": source} if source else {})

    def load(self, folder: Path, meta: dict, *, trusted: bool = False) -> Predictor:
        (xgb,) = require("xgboost", "xgboost", "xgboost")
        return _Predictor(_booster(xgb, Path(folder) / meta["file"]), meta["file"])


class _Predictor(NamedFeatures):
    def __init__(self, booster, name: str):
        self.booster = booster
        # inplace_predict takes its thread count from the booster: a copy runs small batches
        # on the calling thread alone (tabular.SMALL_BATCH).
        self._one_thread = booster.copy()
        self._one_thread.set_param({"nthread": 1})
        names = booster.feature_names  # a call into the library each time: once
        self._names = tuple(names) if names else None
        self._label = f"xgboost model {name}"

    def predict_matrix(self, matrix) -> list:
        n = len(matrix)
        if not n:
            return []
        booster = self.booster if n >= SMALL_BATCH else self._one_thread
        # Booster.inplace_predict validates names only for frames; the matrix is in the
        # booster's feature order already, as select_features put it.
        return call_model(booster.inplace_predict, matrix, n, self._label)


def _booster(xgb, path: Path):
    try:
        return xgb.Booster(model_file=str(path))
    except Exception as exc:
        raise ModelError(f"xgboost cannot load {path.name}: {type(exc).__name__}: {exc}") from None
