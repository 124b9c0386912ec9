"""The reference profile of a model version: its training set, column by column.

Computed once at registration (``store.models.register`` with a ``training_dataset``),
stored as ``profile.json`` in the artifact store (content-addressed, so as immutable as
the version that records its digest as ``spec["profile"]``), and read by the drift
monitor (monitoring/drift.py), which compares a window of served rows with it.

Per column (each signature input, and ``prediction``: the model's output on the
training rows), the profile holds what drift tests and the report need:

- every column: ``kind`` (numeric or categorical), ``rows`` (all rows, nulls included:
  the size the drift test choice depends on), ``nulls``, ``null_rate``, ``unique``;
- numeric: ``min``, ``max``, ``mean``, ``std``, ``quantiles``, a 20-bin ``histogram``
  and ``sample``: the non-null values, all of them up to ``SAMPLE_SIZE``, else a seeded
  random sample of that size (two-sample tests need values, not a summary);
- categorical, and numeric with at most ``FEW_VALUES`` distinct values: ``frequencies``
  (value -> count, the ``MAX_CATEGORIES`` most frequent; ``other`` counts the rest).

Numbers only (numpy over Arrow): no statistics library is needed to register a model.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from featurestore.types import arrow_kind

__all__ = ["FEW_VALUES", "MAX_CATEGORIES", "PREDICTION", "PROFILE_FILE", "SAMPLE_SIZE", "column_kind",
           "category_key", "column_values", "dumps_profile", "profile_column", "profile_table", "reference_profile"]

PROFILE_FILE = "profile.json"
#: The profile's name for the model's output (the serving log's column name too).
PREDICTION = "prediction"
SAMPLE_SIZE = 5000
FEW_VALUES = 20
MAX_CATEGORIES = 200
QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
HISTOGRAM_BINS = 20
_SEED = 20240501


# Numbers are profiled as numbers; strings and booleans as categories; nothing else.
_PROFILED = {"integer": "numeric", "float": "numeric", "string": "categorical", "bool": "categorical"}


def column_kind(dtype: pa.DataType) -> str | None:
    """``numeric`` (integers, floats), ``categorical`` (strings, bools) or None (not profiled)."""
    return _PROFILED.get(arrow_kind(dtype))


def column_values(column: pa.ChunkedArray | pa.Array, kind: str) -> tuple[np.ndarray, int]:
    """``(non-null values, null count)``: float64 for numeric (NaN counts as null), str for
    categorical (bools as ``true``/``false``, the JSON spelling)."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if pa.types.is_dictionary(column.type):
        column = column.dictionary_decode()
    total = len(column)
    if kind == "numeric":
        values = column.cast(pa.float64()).to_numpy(zero_copy_only=False)
        values = values[~np.isnan(values)]
        return values, total - len(values)
    present = column.drop_null()
    if pa.types.is_boolean(present.type):
        present = pc.if_else(present, "true", "false")
    values = np.asarray(present.to_pylist(), dtype=object).astype(str)
    return values, total - len(values)


def profile_column(column: pa.ChunkedArray | pa.Array, kind: str) -> dict[str, Any]:
    values, nulls = column_values(column, kind)
    rows = len(values) + nulls
    out: dict[str, Any] = {"kind": kind, "rows": rows, "nulls": nulls,
                           "null_rate": nulls / rows if rows else 0.0}
    uniques, counts = np.unique(values, return_counts=True)
    out["unique"] = len(uniques)
    if kind == "categorical" or len(uniques) <= FEW_VALUES:
        order = np.argsort(-counts, kind="stable")[:MAX_CATEGORIES]
        out["frequencies"] = {category_key(uniques[i]): int(counts[i]) for i in order}
        out["other"] = int(len(values) - sum(out["frequencies"].values()))
    if kind == "numeric" and len(values):
        out.update(min=float(values.min()), max=float(values.max()), mean=float(values.mean()),
                   std=float(values.std()),  # ddof=0, the norm of Evidently's Wasserstein test
                   quantiles={str(q): float(v) for q, v in zip(QUANTILES, np.quantile(values, QUANTILES))})
        counts, edges = np.histogram(values, bins=HISTOGRAM_BINS)
        out["histogram"] = {"edges": edges.tolist(), "counts": counts.tolist()}
        sample = values
        if len(values) > SAMPLE_SIZE:
            sample = np.random.default_rng(_SEED).choice(values, SAMPLE_SIZE, replace=False)
        out["sample"] = sample.tolist()
    return out


def profile_table(table: pa.Table, columns: Iterable[str], renames: Mapping[str, str] | None = None) -> dict[str, Any]:
    """``{"columns": {name: column profile}}`` for the named columns of ``table`` that have a
    profiled type (others are listed under ``skipped`` with their type)."""
    renames = renames or {}
    profiles, skipped = {}, {}
    for name in columns:
        if name not in table.column_names:
            continue
        kind = column_kind(table.schema.field(name).type)
        if kind is None:
            skipped[renames.get(name, name)] = str(table.schema.field(name).type)
            continue
        profiles[renames.get(name, name)] = profile_column(table.column(name), kind)
    # ``order``: the columns in signature order (the JSON file sorts keys).
    return {"rows": table.num_rows, "order": list(profiles), "columns": profiles, "skipped": skipped}


def dumps_profile(profile: Mapping[str, Any]) -> bytes:
    """Canonical JSON bytes (sorted keys), so the same training set gives the same digest."""
    return json.dumps(profile, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def category_key(value: Any) -> str:
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))  # 3.0 and the integer 3 are one category
    return str(value)


#: Training rows the model scores at registration to profile its output (a seeded sample).
PREDICTION_ROWS = 10_000


def reference_profile(table: pa.Table, inputs: Iterable[str], predict=None) -> dict[str, Any]:
    """The profile of a training set's ``inputs`` and, when ``predict`` (a table -> list of
    values function) is given, of the model's output on (a sample of) its rows."""
    profile = profile_table(table, list(inputs))
    if predict is None or table.num_rows == 0:
        return profile
    rows = table
    if table.num_rows > PREDICTION_ROWS:
        picked = np.sort(np.random.default_rng(_SEED).choice(table.num_rows, PREDICTION_ROWS, replace=False))
        rows = table.take(pa.array(picked))
    output = pa.array(predict(rows))
    kind = column_kind(output.type)
    if kind is None:  # several values per row: not profiled
        profile["skipped"][PREDICTION] = str(output.type)
    else:
        profile["columns"][PREDICTION] = profile_column(output, kind)
        profile["order"].append(PREDICTION)
    return profile
