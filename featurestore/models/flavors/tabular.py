"""Between Arrow tables and the arrays model libraries take and give back.

The predictor contract is Arrow in, Python values out. Going in, the libraries want a
2-D numpy matrix whose columns are in the order the model was trained on; coming out,
they give numpy arrays, which become lists of plain Python values (``tolist`` turns
numpy scalars into float/int/str/bool), one per input row.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence

import numpy as np
import pyarrow as pa

from featurestore.errors import FeatureStoreError, ModelError, SchemaError

__all__ = ["SMALL_BATCH", "NamedFeatures", "call_model", "feature_matrix", "select_features", "takes_columns", "to_rows"]

# Fewer rows than this (a served request) are predicted on the calling thread alone by the
# libraries with an OpenMP team (lightgbm, xgboost): a team costs more than a few rows of
# trees, and on busy cores its barrier can wait out a whole time slice (one row, 100 trees,
# 2 shared cores: lightgbm p99 83 ms with the default team, 0.2 ms with one thread;
# xgboost p99 29-77 ms, 0.35 ms). Batch scoring keeps the libraries' threads.
SMALL_BATCH = 1000

# The names xgboost (f0, f1, ...) and lightgbm (Column_0, ...) give unnamed columns.
_GENERATED = re.compile(r"^(f|Column_)\d+$")


def select_features(table: pa.Table, names: Sequence[str] | None, label: str) -> pa.Table:
    """The columns a model was trained on, in its order.

    ``names`` are the feature names the model file records. When the table has them all,
    they pick and order the columns. A model trained on a bare matrix records generated
    names (``f0``, ``Column_0``): then a table with exactly as many columns is taken in its
    own order (the signature already put it in training order). Real names never match
    by position: a renamed column would silently feed the wrong feature.
    """
    if not names:
        return table
    names = list(names)
    if set(names) <= set(table.column_names):
        return table.select(names)
    if table.num_columns == len(names) and all(_GENERATED.match(n) for n in names):
        return table
    missing = [n for n in names if n not in table.column_names]
    raise SchemaError(f"{label}: the model needs {len(names)} feature columns; missing {', '.join(map(repr, missing))}")


@functools.lru_cache(maxsize=1024)
def takes_columns(names: tuple[str, ...] | None, columns: tuple[str, ...]) -> bool:
    """Whether ``select_features`` leaves a table of ``columns`` as it is, for a model
    recording feature ``names``: then the table's matrix is the model's, column for column
    (a predictor's ``predict_matrix``, given such a matrix, answers as its ``predict``)."""
    if not names:
        return True
    if set(names) <= set(columns):
        return list(names) == list(columns)
    return len(columns) == len(names) and all(_GENERATED.match(n) for n in names)


class NamedFeatures:
    """What the predictors of models that record their feature names (lightgbm, xgboost)
    share: ``predict`` is their ``predict_matrix`` of the matrix of those columns, in
    their order."""

    _names: tuple[str, ...] | None
    _label: str

    def predict(self, features: pa.Table) -> list:
        if not features.num_rows:
            return []
        return self.predict_matrix(feature_matrix(select_features(features, self._names, self._label)))

    def takes_matrix(self, columns: tuple[str, ...]) -> bool:
        return takes_columns(self._names, columns)


def feature_matrix(table: pa.Table, dtype: np.dtype | type | None = None) -> np.ndarray:
    """The table as a rows x columns numpy matrix; nulls become NaN in numeric columns."""
    if table.num_columns == 0:
        raise SchemaError("a model needs at least one input column")
    columns = [_column_array(table.column(i)) for i in range(table.num_columns)]
    matrix = np.column_stack(columns)
    return matrix.astype(dtype, copy=False) if dtype is not None else matrix


def _column_array(column: pa.ChunkedArray) -> np.ndarray:
    if pa.types.is_integer(column.type) and column.null_count:
        column = column.cast(pa.float64())  # NaN is how the libraries spell a missing value
    elif pa.types.is_boolean(column.type):
        column = column.cast(pa.float64() if column.null_count else pa.int8())
    return column.to_numpy()


def call_model(predict, data: object, n_rows: int, label: str) -> list:
    """``predict(data)`` as one Python value per row; the library's errors become ModelError.

    Zero rows give ``[]`` without calling the model (most libraries refuse an empty matrix).
    """
    if not n_rows:
        return []
    try:
        values = predict(data)
    except FeatureStoreError:
        raise
    except Exception as exc:
        raise ModelError(f"{label} failed: {type(exc).__name__}: {exc}") from exc
    return to_rows(values, n_rows, label)


def to_rows(values: object, n_rows: int, label: str) -> list:
    """A model's output as one Python value per row (a list of values for multi-output)."""
    if isinstance(values, (pa.Array, pa.ChunkedArray)):
        rows = values.to_pylist()
    elif isinstance(values, (list, tuple)):
        rows = [_python_value(v) for v in values]
    else:
        array = np.asarray(values)
        if array.ndim == 2 and array.shape[1] == 1:
            array = array[:, 0]
        if array.ndim == 0 or array.ndim > 2:
            raise ModelError(f"{label}: predict returned an array of shape {array.shape}; expected one value "
                             f"or one row of values per input row")
        rows = array.tolist()
    if len(rows) != n_rows:
        raise ModelError(f"{label}: predict returned {len(rows)} value(s) for {n_rows} input row(s)")
    return rows


def _python_value(value: object) -> object:
    if isinstance(value, (np.ndarray, np.generic)):
        return value.tolist()
    if isinstance(value, (list, tuple)):
        return [_python_value(v) for v in value]
    return value
