"""Reading an MLflow model directory without MLflow.

An MLflow model is a folder with an ``MLmodel`` YAML file whose ``flavors`` mapping says
where the native model file is, e.g.::

    flavors:
      python_function: {loader_module: mlflow.sklearn, model_path: model.pkl, ...}
      sklearn: {pickled_model: model.pkl, serialization_format: cloudpickle, ...}

The model file is saved with one of our flavors as it is; MLflow's own record (its
version, the flavor, the run and model ids) goes into the saved metadata as ``source``.
MLflow pickles scikit-learn models (and LightGBM's sklearn-API models), so those load
only with ``trusted=True``, like any pickle.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from featurestore.errors import InputError

__all__ = ["read_mlmodel"]

# MLflow flavor -> (our flavor, the keys that may name the model file), most specific first.
_NATIVE = {
    "sklearn": ("sklearn", ("pickled_model",)),
    "onnx": ("onnx", ("data",)),
    "xgboost": ("xgboost", ("data",)),
    "lightgbm": ("lightgbm", ("data",)),
}
# What a python_function flavor alone can point at.
_LOADERS = {"mlflow.sklearn": "sklearn", "mlflow.onnx": "onnx", "mlflow.xgboost": "xgboost",
            "mlflow.lightgbm": "lightgbm"}
_PICKLES = (".pkl", ".pickle", ".joblib")


def read_mlmodel(folder: str | Path) -> tuple[str, dict, Path]:
    """``(flavor name, save options, native model file)`` for an MLflow model directory.

    The package's ``read_mlflow_model`` turns the name into the flavor. An MLmodel with
    none of our flavors is an InputError.
    """
    folder = Path(folder)
    mlmodel = folder if folder.name == "MLmodel" else folder / "MLmodel"
    if not mlmodel.is_file():
        raise InputError(f"{str(folder)!r} is not an MLflow model directory: no MLmodel file in it")
    folder = mlmodel.parent
    try:
        spec = yaml.safe_load(mlmodel.read_text()) or {}
    except yaml.YAMLError as exc:
        raise InputError(f"{mlmodel}: not valid YAML ({str(exc).splitlines()[0]})") from None
    flavors = spec.get("flavors") if isinstance(spec, dict) else None
    if not isinstance(flavors, dict) or not flavors:
        raise InputError(f"{mlmodel} has no 'flavors' mapping")
    name, mlflow_flavor, relative = _pick(flavors, mlmodel)
    path = folder / relative
    if not path.exists():
        raise InputError(f"{mlmodel}: its {mlflow_flavor} flavor names {relative!r}, which is not in {folder}")
    if path.suffix.lower() in _PICKLES:
        name = "sklearn"  # MLflow pickles sklearn-API models; the sklearn flavor runs any of them
    source = {"format": "mlflow", "mlflow_flavor": mlflow_flavor}
    for key in ("mlflow_version", "model_uuid", "run_id", "utc_time_created"):
        if spec.get(key) is not None:
            source[key] = str(spec[key])
    return name, {"source": source}, path


def _pick(flavors: dict, mlmodel: Path) -> tuple[str, str, str]:
    for mlflow_flavor, (name, keys) in _NATIVE.items():
        conf = flavors.get(mlflow_flavor)
        if isinstance(conf, dict):
            for key in keys:
                if isinstance(conf.get(key), str):
                    return name, mlflow_flavor, conf[key]
    pyfunc = flavors.get("python_function")
    if isinstance(pyfunc, dict) and pyfunc.get("loader_module") in _LOADERS:
        relative = pyfunc.get("model_path") or pyfunc.get("data")
        if isinstance(relative, str):
            return _LOADERS[pyfunc["loader_module"]], "python_function", relative
    found = ", ".join(sorted(map(str, flavors)))
    loader = pyfunc.get("loader_module") if isinstance(pyfunc, dict) else None
    raise InputError(
        f"{mlmodel}: unsupported MLflow flavor(s) {found}" + (f" (loader {loader})" if loader else "")
        + "; supported: sklearn, onnx, xgboost, lightgbm, or python_function over one of them"
    )
