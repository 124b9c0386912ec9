"""The ``python`` flavor: a model written in Python, saved as its import path.

Nothing is pickled. The model is saved as the import path of its class or function
(``module:QualName``, importable from the repo folder, which is on ``sys.path`` when
definitions load, or from an installed package), plus optional JSON ``params`` and
``files``. The contract, for a class::

    class FraudRules:
        def __init__(self, threshold=0.5, files=None):   # files only if the model has any
            ...
        def predict(self, features: pyarrow.Table) -> list: ...   # one value per row

On load the class is built as ``cls(**params)``, plus ``files={name: Path}`` when files
were saved with it (the copies inside the artifact folder). Registering an instance is
fine when its state comes from ``params``/``files``: the class is re-created from them
at registration to prove it can be (state set any other way would be lost). A plain
function is called as ``fn(features)`` and takes neither params nor files.
"""

from __future__ import annotations

import importlib
import inspect
import json
import shutil
from pathlib import Path

import pyarrow as pa

from featurestore.errors import ModelError
from featurestore.models.flavors.base import Predictor
from featurestore.models.flavors.tabular import call_model

__all__ = ["PythonFlavor"]


class PythonFlavor:
    name = "python"
    extra = None

    def accepts(self, model: object) -> bool:
        if isinstance(model, type):
            return callable(getattr(model, "predict", None))
        return callable(getattr(model, "predict", None)) or inspect.isfunction(model)

    def save(self, model: object, folder: Path, *, params: dict | None = None,
             files: dict[str, str | Path] | None = None, trusted: bool = False, source: dict | None = None) -> dict:
        params = dict(params or {})
        try:
            json.dumps(params)
        except (TypeError, ValueError) as exc:
            raise ModelError(f"python model params must be JSON values: {exc}") from None
        target, kind = _target(model)
        path = _import_path(target)
        if _resolve(path) is not target:
            raise ModelError(f"cannot save {path}: importing it gives another object; define it at the top "
                             f"level of a module in the repo or an installed package")
        if kind == "function" and (params or files):
            raise ModelError(f"{path} is a function, which takes no params or files; use a class whose "
                             f"__init__ takes them")
        names = _copy_files(files or {}, folder)
        if kind == "class":
            _build(target, params, {n: folder / "files" / n for n in names}, path)  # can it be re-created?
        meta = {"import_path": path, "kind": kind, "params": params, "files": names}
        return meta | ({"source": source} if source else {})

    def load(self, folder: Path, meta: dict, *, trusted: bool = False) -> Predictor:
        target = _resolve(meta["import_path"])
        if meta.get("kind") == "function":
            return _Predictor(target, meta["import_path"])
        files = {n: Path(folder) / "files" / n for n in meta.get("files", [])}
        return _Predictor(_build(target, meta.get("params") or {}, files, meta["import_path"]).predict,
                          meta["import_path"])


class _Predictor:
    def __init__(self, predict, label: str):
        self._predict, self._label = predict, label

    def predict(self, features: pa.Table) -> list:
        return call_model(self._predict, features, features.num_rows, f"python model {self._label}")


def _target(model: object) -> tuple[object, str]:
    """The class or function to save, and which of the two it is."""
    if isinstance(model, (str, Path)):
        model = _resolve(str(model))
    if isinstance(model, type):
        if not callable(getattr(model, "predict", None)):
            raise ModelError(f"cannot save {model.__qualname__} as a python model: not a class with predict")
        return model, "class"
    if inspect.isfunction(model):
        return model, "function"
    if callable(getattr(model, "predict", None)):
        return type(model), "class"
    raise ModelError(f"cannot save {type(model).__qualname__} object as a python model: not a class with "
                     f"predict, nor a function (an unpicklable object; the python flavor saves an import path)")


def _import_path(target: object) -> str:
    module, qualname = target.__module__, target.__qualname__
    if module == "__main__" or "<locals>" in qualname or "<lambda>" in qualname:
        where = "in __main__" if module == "__main__" else "inside a function"
        raise ModelError(f"cannot save {qualname}: it is defined {where}, so it cannot be imported when the "
                         f"model loads (an unpicklable object); move it to a module in the repo")
    return f"{module}:{qualname}"


def _resolve(path: str) -> object:
    module_name, _, qualname = path.partition(":")
    if not module_name or not qualname:
        raise ModelError(f"python model {path!r}: expected an import path 'module:QualName'")
    try:
        obj = importlib.import_module(module_name)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except ImportError as exc:
        raise ModelError(f"python model {path!r} cannot be imported ({exc}); is it in the repo folder or an "
                         f"installed package?") from None
    except AttributeError:
        raise ModelError(f"python model {path!r}: module {module_name!r} has no {qualname!r}") from None
    return obj


def _build(cls: type, params: dict, files: dict[str, Path], path: str) -> object:
    kwargs = dict(params) | ({"files": files} if files else {})
    try:
        return cls(**kwargs)
    except Exception as exc:
        call = ", ".join([*(f"{k}=..." for k in params), *(["files=..."] if files else [])])
        raise ModelError(f"python model {path}: {cls.__qualname__}({call}) failed ({type(exc).__name__}: "
                         f"{exc}); a python model is re-created from its params and files on load") from None


def _copy_files(files: dict[str, str | Path], folder: Path) -> list[str]:
    names = []
    for name, source in sorted(files.items()):
        if not name or "/" in name or "\\" in name or name in (".", ".."):
            raise ModelError(f"python model file name {name!r} must be a plain file name")
        source = Path(source)
        target = folder / "files" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target)
        elif source.is_file():
            shutil.copyfile(source, target)
        else:
            raise ModelError(f"python model file {name!r}: {str(source)!r} does not exist")
        names.append(name)
    return names
