"""Model flavors: one module per model library, behind the protocol in ``base``.

``get_flavor(name)`` for a named flavor, ``infer_flavor(model)`` to pick one from an
object's type (or a model file's extension), ``read_mlflow_model`` to take an MLflow
model directory apart without MLflow. Importing this package imports no model library.
"""

from __future__ import annotations

import os
from pathlib import Path

from featurestore.errors import InputError, NotFoundError, close_matches
from featurestore.models.flavors.base import Flavor, Predictor, type_path
from featurestore.models.flavors.lightgbm import LightGBMFlavor
from featurestore.models.flavors.mlflow import read_mlmodel
from featurestore.models.flavors.onnx import OnnxFlavor
from featurestore.models.flavors.python import PythonFlavor
from featurestore.models.flavors.sklearn import SklearnFlavor
from featurestore.models.flavors.xgboost import XGBoostFlavor

__all__ = ["Flavor", "Predictor", "flavor_names", "get_flavor", "infer_flavor", "read_mlflow_model"]

# Asked in this order: xgboost and lightgbm models are scikit-learn estimators too, and
# any of them has a predict method, which is all the python flavor asks for.
_FLAVORS: dict[str, Flavor] = {
    f.name: f for f in (XGBoostFlavor(), LightGBMFlavor(), OnnxFlavor(), SklearnFlavor(), PythonFlavor())
}
# A model file's extension, where it names one library.
_SUFFIXES = {".onnx": "onnx", ".skops": "sklearn", ".pkl": "sklearn", ".pickle": "sklearn", ".joblib": "sklearn",
             ".ubj": "xgboost", ".xgb": "xgboost", ".lgb": "lightgbm"}


def flavor_names() -> tuple[str, ...]:
    """The known flavors' names."""
    return tuple(sorted(_FLAVORS))


def get_flavor(name: str) -> Flavor:
    """The flavor called ``name``; NotFoundError listing the known ones otherwise."""
    try:
        return _FLAVORS[name]
    except (KeyError, TypeError):
        matches = close_matches(str(name), _FLAVORS)
        hint = (f"did you mean {', '.join(map(repr, matches))}? " if matches else "") + \
            f"known flavors: {', '.join(flavor_names())}"
        raise NotFoundError("flavor", str(name), hint=hint) from None


def infer_flavor(model: object) -> Flavor:
    """The flavor for an in-memory model (by its type) or a model file (by its extension)."""
    if isinstance(model, (str, os.PathLike)):
        suffix = Path(model).suffix.lower()
        if suffix in _SUFFIXES:
            return _FLAVORS[_SUFFIXES[suffix]]
        raise InputError(f"cannot tell the flavor of model file {os.fspath(model)!r} from its name; pass flavor= "
                         f"(one of {', '.join(flavor_names())})")
    for flavor in _FLAVORS.values():
        if flavor.accepts(model):
            return flavor
    raise InputError(f"no flavor saves a {type_path(model)}: pass flavor= (one of {', '.join(flavor_names())}), or "
                     f"wrap it in a class with predict(features) for the python flavor")


def read_mlflow_model(folder: str | Path) -> tuple[Flavor, dict, Path]:
    """``(flavor, save options, native model file)`` for an MLflow model directory.

    Reads its ``MLmodel`` file without MLflow. Save the model with
    ``flavor.save(path, target_folder, **options)``, plus ``trusted=True`` for a pickled
    model (how MLflow stores scikit-learn models). An MLmodel with none of our flavors
    (sklearn, onnx, xgboost, lightgbm, or python_function over one of them) is an
    InputError naming the flavors it has.
    """
    name, options, path = read_mlmodel(folder)
    return get_flavor(name), options, path
