"""The flavor protocol: how one model library's models are saved, loaded and run.

A flavor writes a model's files into a folder (which the artifact store then keeps,
content-addressed) and returns JSON-able metadata; ``load`` gets that folder and the
metadata back and returns a ``Predictor``. Every predictor takes the signature-ordered
feature columns as one ``pyarrow.Table`` and returns one Python value per row: a scalar,
or a list of values for a multi-output model.

Model libraries are optional extras. A flavor module imports its library only inside
``save``/``load`` (through ``require``), so ``import featurestore`` never does, and a
missing library is a ``ModelError`` naming the pip command that brings it.
"""

from __future__ import annotations

import importlib
import os
import shutil
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from types import ModuleType
from typing import Protocol

import pyarrow as pa

from featurestore.errors import ModelError

__all__ = ["Flavor", "MatrixPredictor", "Predictor", "copy_model_file", "is_instance_of", "library_version", "require", "type_path"]


class Predictor(Protocol):
    """A loaded model."""

    def predict(self, features: pa.Table) -> list:
        """One Python value per input row: a scalar, or a list of values (multi-output)."""
        ...


class MatrixPredictor(Predictor, Protocol):
    """A tabular model's predictor that also takes the numpy matrix ``tabular.feature_matrix``
    makes of the signature-ordered table (the server builds it from a read's values
    directly when every input is a number, skipping the table)."""

    def takes_matrix(self, columns: tuple[str, ...]) -> bool:
        """Whether ``predict_matrix`` may be given the matrix of a table of ``columns``."""
        ...

    def predict_matrix(self, matrix) -> list:
        """What ``predict`` answers for the table whose ``feature_matrix`` is ``matrix``."""
        ...


class Flavor(Protocol):
    """Saves and loads the models of one library."""

    name: str  # "python" | "sklearn" | "onnx" | "xgboost" | "lightgbm"
    extra: str | None  # the pip extra that brings the library; None when none is needed

    def accepts(self, model: object) -> bool:
        """Whether this in-memory object is a model this flavor saves (imports nothing)."""
        ...

    def save(self, model: object, folder: Path, **options) -> dict:
        """Write the model's files into the empty ``folder``; returns metadata for ``load``.

        ``model`` is an in-memory object, or a str/Path to a model file or folder in the
        library's native format. Every flavor takes ``trusted`` (only the sklearn flavor
        needs it, for pickles and unknown types) and ``source`` (where the model came
        from, e.g. an MLflow directory's record, kept in the metadata as it is).
        """
        ...

    def load(self, folder: Path, meta: dict, *, trusted: bool = False) -> Predictor:
        """The predictor for files that ``save`` wrote into ``folder``."""
        ...


def require(flavor: str, extra: str, *modules: str) -> list[ModuleType]:
    """Import ``modules`` for ``flavor``, or raise a ModelError naming the extra to install."""
    loaded = []
    for name in modules:
        try:
            loaded.append(importlib.import_module(name))
        except ImportError as exc:
            packages = " and ".join(_PACKAGES.get(m, m) for m in modules)
            raise ModelError(
                f"the {flavor} flavor needs {packages}: pip install 'featurestore[{extra}]' ({exc})"
            ) from None
    return loaded


# Import names whose pip package is spelled differently, for the install hint.
_PACKAGES = {"sklearn": "scikit-learn", "skops.io": "skops", "joblib": "scikit-learn"}


def library_version(distribution: str) -> str | None:
    """The installed version of a pip distribution, recorded with a saved model."""
    try:
        return version(distribution)
    except PackageNotFoundError:
        return None


def type_path(obj: object) -> str:
    """``module.QualName`` of an object's class, without importing anything."""
    cls = type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


def is_instance_of(obj: object, module_prefix: str, class_names: tuple[str, ...]) -> bool:
    """Whether ``obj``'s class, or a base class, is one of ``class_names`` from ``module_prefix``.

    Checks names along the MRO instead of importing the library, so asking whether an
    object is an xgboost model never imports xgboost.
    """
    for cls in type(obj).__mro__:
        if cls.__module__.split(".")[0] == module_prefix and cls.__name__ in class_names:
            return True
    return False


def copy_model_file(source: str | os.PathLike[str], folder: Path, flavor: str, suffixes: tuple[str, ...]) -> str:
    """Copy a native model file into ``folder`` under its own name; returns that name."""
    path = Path(source)
    if not path.is_file():
        raise ModelError(f"cannot save {flavor} model {str(path)!r}: no such file")
    if suffixes and path.suffix.lower() not in suffixes:
        raise ModelError(f"cannot save {str(path)!r} as a {flavor} model: expected a file ending in "
                         f"{' or '.join(suffixes)}")
    shutil.copyfile(path, folder / path.name)
    return path.name
