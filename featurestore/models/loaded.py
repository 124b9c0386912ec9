"""``LoadedModel``: a registered version's model, ready to predict on feature tables.

``predict`` conforms its input to the version's signature first (the rules are in
``featurestore.models.signature``), so a model sees the columns it was trained on, in
that order and with those types, wherever it runs.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa

from featurestore.errors import InputError
from featurestore.models.flavors import Predictor
from featurestore.models.records import ModelVersion

__all__ = ["LoadedModel", "repo_on_path", "to_table"]


class LoadedModel:
    """A loaded version: ``predict`` conforms its input to the signature, then runs the model."""

    def __init__(self, version: ModelVersion, predictor: Predictor):
        self.version, self.predictor = version, predictor

    @property
    def signature(self):
        return self.version.signature

    def predict(self, features: Any) -> list:
        """One value (or list of values) per row of ``features`` (pyarrow, polars, pandas or
        a dict of columns); columns are checked against the signature and put in its order."""
        table = to_table(features)
        if self.version.signature is not None:
            table = self.version.signature.conform(table, label=f"model {self.version.uri}")
        return self.predictor.predict(table)

    def __repr__(self) -> str:
        return f"LoadedModel({self.version.uri!r}, flavor={self.version.flavor!r})"


@contextlib.contextmanager
def repo_on_path(repo: Path) -> Iterator[None]:
    """The repo folder on ``sys.path`` meanwhile: python-flavor classes live in the repo."""
    added = str(repo) not in sys.path
    if added:
        sys.path.insert(0, str(repo))
    try:
        yield
    finally:
        if added and str(repo) in sys.path:
            sys.path.remove(str(repo))


def to_table(features: Any) -> pa.Table:
    if isinstance(features, pa.Table):
        return features
    if isinstance(features, Mapping):
        return pa.table(dict(features))
    if callable(getattr(features, "to_arrow", None)):  # polars
        return features.to_arrow()
    if type(features).__module__.startswith("pandas"):
        return pa.Table.from_pandas(features, preserve_index=False)
    raise InputError(f"predict takes a pyarrow Table, a polars or pandas DataFrame or a dict of columns, "
                     f"not {type(features).__name__}")
