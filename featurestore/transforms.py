"""Running on-demand feature views: one code path for training sets and online reads.

The transform's input is a table with one row per entity row: each source view feature
under its feature name, each request field under its field name, every column cast to
its declared type first. Offline the columns come from the point-in-time join and the
entity table, online from the store's answer and the request, so the same values give
the same Arrow table and the same output. Outputs are cast to the declared schema.

A function is imported by ``udf_module``/``udf_qualname`` from the repo folder (on
``sys.path`` once the repo's definitions or the store are loaded), once per process.
"""

from __future__ import annotations

import importlib
import sys
import traceback
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import pyarrow as pa

from featurestore.definitions import OnDemandFeatureView
from featurestore.errors import DefinitionError, InputError
from featurestore.repo import RepoContents
from featurestore.types import FeatureType, compatible, from_arrow

__all__ = ["check_transform", "import_path", "input_types", "load_udf", "request_columns", "run_transform"]

_LOADED: dict[tuple[str, str, str], Callable[[Any], Any]] = {}


def import_path(repo: Path) -> None:
    """Let the repo's definition modules be imported by name (as ``discover`` does)."""
    path = str(Path(repo).resolve())
    if path not in sys.path:
        sys.path.insert(0, path)


def load_udf(odfv: OnDemandFeatureView) -> Callable[[Any], Any]:
    """The view's function: its own, or imported from its module (cached per process)."""
    if odfv.udf is not None:
        return odfv.udf
    key = (odfv.udf_module, odfv.udf_qualname, odfv.udf_source)
    udf = _LOADED.get(key)
    if udf is None:
        try:
            obj: Any = importlib.import_module(odfv.udf_module)
            for part in odfv.udf_qualname.split("."):
                obj = getattr(obj, part)
        except Exception as exc:  # noqa: BLE001 - any import failure of user code is reported
            raise DefinitionError(
                f"on-demand feature view {odfv.name!r}: cannot import its function "
                f"{odfv.udf_module}.{odfv.udf_qualname} from the repo ({type(exc).__name__}: {exc}); "
                "run the server from the repo folder it was applied from"
            ) from None
        udf = obj.udf if isinstance(obj, OnDemandFeatureView) else obj
        _LOADED[key] = udf
    return udf


def input_types(odfv: OnDemandFeatureView, contents: RepoContents) -> dict[str, FeatureType]:
    """Each input column's declared type: source view features, then request fields."""
    types: dict[str, FeatureType] = {}
    for source in odfv.view_sources:
        view = contents.feature_views.get(source.name)
        declared = {f.name: f.dtype for f in (view or source.view).features}
        types.update((f, declared[f]) for f in source.features)
    for request in odfv.request_sources:
        types.update((f.name, f.dtype) for f in request.schema)
    return types


def request_columns(odfv: OnDemandFeatureView, given: Mapping[str, Any] | Sequence[Mapping[str, Any]],
                    n: int) -> dict[str, list]:
    """The request fields of ``odfv`` from column-major values or rows; InputError naming
    every missing field."""
    names = [f.name for r in odfv.request_sources for f in r.schema]
    if isinstance(given, Mapping):
        missing = [f for f in names if f not in given]
        columns = {f: _column(given[f], n) for f in names if f in given}
    else:
        missing = sorted({f for row in given for f in names if f not in row}, key=names.index)
        columns = {f: [row.get(f) for row in given] for f in names}
    if missing:
        raise InputError(
            f"on-demand feature view {odfv.name!r} needs request field(s) {', '.join(map(repr, missing))}; "
            "send them with the entities (or in 'request' over HTTP)"
        )
    for f, values in columns.items():
        if len(values) != n:
            raise InputError(f"request field {f!r} has {len(values)} values for {n} entity rows")
    return columns


def _column(values: Any, n: int) -> Any:
    """A request field's values: a list, an Arrow array, a numpy array or pandas Series, or
    one value for every row."""
    if isinstance(values, (list, pa.Array, pa.ChunkedArray)):
        return values
    if isinstance(values, tuple):
        return list(values)
    if not isinstance(values, (str, bytes)) and hasattr(values, "tolist"):
        values = values.tolist()
        return values if isinstance(values, list) else [values] * n
    return [values] * n


def run_transform(odfv: OnDemandFeatureView, inputs: Mapping[str, Any], types: Mapping[str, FeatureType],
                  n: int, *, strict: bool = False) -> pa.Table:
    """The declared outputs of ``odfv`` over the input columns (Arrow arrays or lists).

    ``strict`` (apply's check) refuses an output whose type is not the declared one;
    otherwise outputs are cast to it (a failing cast is a DefinitionError as well)."""
    if n == 0 and not strict:  # nothing to compute: no call, typed empty columns
        return pa.Table.from_arrays([pa.array([], type=f.dtype.to_arrow()) for f in odfv.schema],
                                    names=list(odfv.feature_names))
    arrays = []
    for name, dtype in types.items():
        arrays.append(_as_array(odfv, name, inputs[name], dtype))
    table = pa.Table.from_arrays(arrays, names=list(types)) if arrays else pa.table({})
    udf = load_udf(odfv)
    try:
        result = udf(_to_mode(odfv.mode, table))
        out = _from_mode(odfv.mode, result)
    except Exception as exc:  # noqa: BLE001 - the user's code failed: say where
        raise DefinitionError(
            f"on-demand feature view {odfv.name!r}: its transform raised {type(exc).__name__}: {exc}"
            f"{_line(exc, udf)}; fix the function and apply again"
        ) from None
    columns = []
    for field in odfv.schema:
        if field.name not in out.column_names:
            raise DefinitionError(
                f"on-demand feature view {odfv.name!r}: the transform returned no column {field.name!r} "
                f"(declared {field.dtype}; it returned {', '.join(out.column_names) or 'no columns'})"
            )
        column = out.column(field.name)
        actual = from_arrow(column.type)
        if strict and not pa.types.is_null(column.type) and (actual is None or not compatible(actual, field.dtype)):
            raise DefinitionError(
                f"on-demand feature view {odfv.name!r}: output column {field.name!r} is {actual or column.type} "
                f"but the schema declares {field.dtype}; change the Field's dtype or cast in the transform"
            )
        try:
            column = column.cast(field.dtype.to_arrow())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            raise DefinitionError(
                f"on-demand feature view {odfv.name!r}: output column {field.name!r} is {actual or column.type} "
                f"and cannot be cast to the declared {field.dtype}"
            ) from None
        if len(column) != n:
            raise DefinitionError(f"on-demand feature view {odfv.name!r}: the transform returned "
                                  f"{len(column)} rows for {n} input rows; return one row per input row")
        columns.append(column)
    return pa.Table.from_arrays(columns, names=list(odfv.feature_names))


def check_transform(odfv: OnDemandFeatureView, contents: RepoContents) -> None:
    """Run the transform on three generated rows of its declared input types and check the
    declared output schema (apply calls it; nothing is committed when it fails)."""
    types = input_types(odfv, contents)
    run_transform(odfv, {name: _sample(dtype) for name, dtype in types.items()}, types, 3, strict=True)


def _as_array(odfv: OnDemandFeatureView, name: str, values: Any, dtype: FeatureType) -> pa.Array:
    target = dtype.to_arrow()
    try:
        if isinstance(values, pa.ChunkedArray):
            values = values.combine_chunks()
        if isinstance(values, pa.Array):
            return values if values.type == target else values.cast(target)
        return pa.array(values, type=target)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, TypeError, ValueError) as exc:
        raise InputError(f"input {name!r} of on-demand feature view {odfv.name!r} must be {dtype} values: {exc}") from None


def _to_mode(mode: str, table: pa.Table) -> Any:
    if mode == "pandas":
        return table.to_pandas()
    if mode == "python":
        return table.to_pydict()
    return table


def _from_mode(mode: str, result: Any) -> pa.Table:
    if isinstance(result, pa.Table):
        return result
    if isinstance(result, Mapping):
        return pa.table({k: list(v) if not hasattr(v, "to_pylist") else v for k, v in result.items()})
    if type(result).__module__.split(".")[0] == "pandas":
        return pa.Table.from_pandas(result, preserve_index=False)
    raise TypeError(f"a {mode} transform must return a {'DataFrame' if mode == 'pandas' else 'table or dict'}, "
                    f"not {type(result).__name__}")


def _line(exc: BaseException, udf: Callable[[Any], Any]) -> str:
    code = getattr(udf, "__code__", None)
    if code is None:
        return ""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == code.co_filename]
    return f" at {code.co_filename}, line {frames[-1].lineno}" if frames else ""


def _sample(dtype: FeatureType) -> list:
    if dtype.item is not None:
        return [[v] for v in _sample(dtype.item)]
    return {
        "Int32": [1, 2, 3], "Int64": [1, 2, 3], "Float32": [0.5, 1.5, 2.5], "Float64": [0.5, 1.5, 2.5],
        "String": ["a", "b", "c"], "Bytes": [b"a", b"b", b"c"], "Bool": [True, False, True],
        "UnixTimestamp": [datetime(2024, 1, d, tzinfo=timezone.utc) for d in (1, 2, 3)],
    }[dtype.name]
