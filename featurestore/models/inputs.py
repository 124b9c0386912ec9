"""The step every prediction shares: from a model version, what to read, and how the
read's answer becomes the model's input table.

``input_spec(version)`` says what to read online: the version's own feature references
(pinned when it was registered, so a service changed since cannot change what the model
sees) and the request fields it takes from the caller. ``model_inputs(version, response)``
turns an online read's answer (on-demand transforms already run inside the read) into the
Arrow table of the signature's inputs, in signature order, and ``fill_missing`` does the
same for a batch of point-in-time rows. Both apply the version's ``on_missing`` policy:

- missing means a status other than PRESENT, or a null value (offline: a null value);
- ``error``: a ``MissingFeatureError`` naming the entity's key values and the feature
  (over HTTP a 422);
- ``null``: the nulls reach the model, as they did in its point-in-time training set;
- ``default``: the input's ``default`` from the signature (register checks that every
  input has one).

The server runs ``model_inputs`` on every request, so what depends only on the version
(column names, Arrow schema, defaults) is built once per version and cached.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from featurestore.bounded import BoundedCache
from featurestore.errors import InputError, MissingFeatureError, ModelError
from featurestore.models.records import DEFAULT_ON_MISSING, ON_MISSING, ModelVersion

__all__ = ["DEFAULT_ON_MISSING", "ON_MISSING", "InputSpec", "ModelInputs", "fill_missing", "input_spec", "model_inputs",
           "read_inputs", "request_values", "same_inputs"]

_PRESENT = "PRESENT"  # featurestore.online.read.FieldStatus.PRESENT (models sit below online reads)


@dataclass(frozen=True)
class InputSpec:
    """What a version reads and how its input table is laid out; one per version."""

    uri: str
    features: tuple[str, ...]            # feature refs to read, the version's own
    feature_service: str | None          # the service it was registered with, if any
    full_feature_names: bool             # its columns are named view__feature
    request_fields: tuple[str, ...]      # inputs the caller sends with the entities
    columns: tuple[str, ...]             # every input, in signature order
    schema: pa.Schema                    # the input table's schema
    types: tuple[pa.DataType, ...]       # its column types (schema.field(i) costs ~0.5 us a call)
    defaults: tuple[Any, ...]            # per input (None: none)
    on_missing: str

    @property
    def feature_columns(self) -> tuple[str, ...]:
        """The inputs read from the store (the rest are request fields)."""
        return self.columns[: len(self.features)]

    @functools.cached_property
    def numbers(self) -> tuple[tuple, ...] | None:
        """Per input, how ``ModelInputs.matrix`` takes it (``_number_kind``); None when one is
        not a number type (then there is no matrix)."""
        kinds = tuple(_number_kind(kind) for kind in self.types)
        return None if None in kinds else kinds


#: Specs kept per process. Versions never change, so an entry is never stale; the bound
#: only keeps a process that loads endless versions from growing.
_SPECS: BoundedCache[tuple, InputSpec] = BoundedCache(512)


def input_spec(version: ModelVersion) -> InputSpec:
    """The version's ``InputSpec`` (built once per version and process)."""
    key = (version.name, version.version, version.artifact, version.created_at)
    spec = _SPECS.get(key)
    if spec is None:
        spec = _SPECS.put(key, _build(version))
    return spec


def _build(version: ModelVersion) -> InputSpec:
    signature = version.signature
    if signature is None:
        raise ModelError(f"model {version.uri} has no signature, so its inputs are unknown; register it again")
    if version.on_missing not in ON_MISSING:
        raise ModelError(f"model {version.uri} has on_missing {version.on_missing!r}; expected one of "
                         f"{', '.join(ON_MISSING)}")
    n = len(version.features)
    columns = signature.input_names
    names = [ref.split(":", 1)[1] for ref in version.features]
    service = version.feature_service["name"] if version.feature_service else None
    schema = pa.schema([pa.field(s.name, s.dtype.to_arrow(), s.nullable) for s in signature.inputs])
    return InputSpec(
        uri=version.uri, features=tuple(version.features), feature_service=service,
        full_feature_names=any(c != f for c, f in zip(columns, names)),
        request_fields=columns[n:], columns=columns,
        schema=schema, types=tuple(field.type for field in schema),
        defaults=tuple(s.default for s in signature.inputs), on_missing=version.on_missing,
    )


def model_inputs(version: ModelVersion | InputSpec, response: Any,
                 request: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
                 join_keys: Sequence[str] | None = None) -> pa.Table:
    """The signature's inputs, in order, from an online read's ``response`` (an
    ``OnlineResponse``) and, for request-field inputs, ``request`` (columns or rows).

    ``join_keys`` name the entity in a ``MissingFeatureError``; by default, the answer's
    columns before its first input column (an online answer starts with its join keys)."""
    return read_inputs(version, response, request, join_keys).table


def read_inputs(version: ModelVersion | InputSpec, response: Any,
                request: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
                join_keys: Sequence[str] | None = None) -> "ModelInputs":
    """``model_inputs`` as a ``ModelInputs``: the values per input, policy applied (a
    ``MissingFeatureError`` or an InputError for a missing feature or request field is
    raised here), the Arrow table built when asked for."""
    spec = version if isinstance(version, InputSpec) else input_spec(version)
    names = response.feature_names
    n = len(response.values[0]) if response.values else 0
    columns = []
    for i, column in enumerate(spec.columns):
        if i < len(spec.features):
            try:
                at = names.index(column)
            except ValueError:
                raise InputError(f"model {spec.uri}: the online answer has no feature column {column!r} "
                                 f"(it has {', '.join(names)}); read the version's features") from None
            values, statuses = response.values[at], response.statuses[at]
            missing = statuses.count(_PRESENT) != n or None in values
        else:
            values, statuses = request_values(spec, request, column, n), None
            missing = None in values
        if missing:
            values = _resolve(spec, i, values, statuses, lambda j: _entity(response, spec, join_keys, j))
        columns.append(values)
    return ModelInputs(spec, columns, n)


_same: dict[tuple[int, int], tuple[InputSpec, InputSpec, bool]] = {}


def same_inputs(a: InputSpec, b: InputSpec) -> bool:
    """Whether two versions read the same features into the same input table (answered
    once per pair of specs: comparing Arrow types costs microseconds)."""
    known = _same.get((id(a), id(b)))
    if known is not None and known[0] is a and known[1] is b:
        return known[2]
    same = (a.features == b.features and a.full_feature_names == b.full_feature_names and a.columns == b.columns
            and a.types == b.types and a.defaults == b.defaults and a.on_missing == b.on_missing)
    if len(_same) >= 64:  # specs are kept per version; a few rollouts at a time
        _same.clear()
    _same[id(a), id(b)] = (a, b, same)
    return same


class ModelInputs:
    """One request's model inputs, in signature order, policy applied: ``matrix()`` the
    numpy matrix a tabular model takes, straight from the values when every input is a
    plain number (a served request skips the Arrow table it would otherwise go through),
    and ``table`` the Arrow table (built on first use; an InputError when a value does not
    fit its input's type)."""

    __slots__ = ("spec", "columns", "num_rows", "_table", "_matrix")

    def __init__(self, spec: InputSpec, columns: list[list] | None, num_rows: int):
        self.spec, self.columns, self.num_rows = spec, columns, num_rows  # columns None: only a table
        self._table: pa.Table | None = None
        self._matrix: np.ndarray | None | bool = False  # False: not tried yet

    @classmethod
    def of_table(cls, spec: InputSpec, table: pa.Table) -> "ModelInputs":
        """Inputs that are a table already (conformed to ``spec``)."""
        inputs = cls(spec, None, table.num_rows)
        inputs._table = table
        return inputs

    @property
    def table(self) -> pa.Table:
        if self._table is None:
            spec = self.spec
            self._table = pa.Table.from_arrays([_array(spec, i, values) for i, values in enumerate(self.columns)],
                                               schema=spec.schema)
        return self._table

    def matrix(self) -> np.ndarray | None:
        """The rows x inputs matrix ``flavors.tabular.feature_matrix`` makes of ``table``, the
        same dtype and the same values (nulls NaN), or None when an input is not numeric or
        a value is one the table would refuse or convert otherwise (the table decides)."""
        if self._matrix is False:
            self._matrix = _matrix(self.spec, self.columns) if self.columns else None
        return self._matrix

    def validate(self, matrix: bool = True) -> None:
        """Raise now the InputError of a value that does not fit its input's type (one that
        is all numbers fits: it has a matrix, and the table is built only when asked for).
        ``matrix``: whether the model takes the matrix; when not, the table it will be
        given is built now rather than a matrix first."""
        if not matrix or self.matrix() is None:
            self.table  # noqa: B018 - built for its error


_F32_MAX = float(np.finfo(np.float32).max)
_EXACT = 2**53  # integers a float64 holds exactly (Arrow refuses larger ones for a float column)
_FLOAT, _INT, _BOOL = 0, 1, 2


def _number_kind(kind: pa.DataType) -> tuple | None:
    """(what, numpy dtype, largest magnitude a float input takes) of an input type, or None."""
    if pa.types.is_floating(kind) and kind.bit_width in (32, 64):
        return (_FLOAT, np.float32, _F32_MAX) if kind.bit_width == 32 else (_FLOAT, np.float64, None)
    if pa.types.is_integer(kind):
        return _INT, np.dtype(kind.to_pandas_dtype()), None
    if pa.types.is_boolean(kind):
        return _BOOL, np.int8, None
    return None


def _matrix(spec: InputSpec, columns: list[list]) -> np.ndarray | None:
    kinds = spec.numbers
    if kinds is None:
        return None
    arrays = []
    for kind, values in zip(kinds, columns):
        array = _numbers(kind, values)
        if array is None:
            return None
        arrays.append(array)
    # ``np.column_stack(arrays)`` (the same promoted dtype, values and C order) at a third
    # of its cost: a served request builds one matrix of a few values.
    return np.array(arrays, dtype=np.result_type(*arrays)).T.copy()


def _numbers(kind: tuple, values: list) -> np.ndarray | None:
    """One input's column as ``feature_matrix`` has it from Arrow (an integer or boolean
    column with nulls: float64 with NaN; booleans otherwise int8), or None when the table
    would refuse a value or convert it otherwise."""
    what, dtype, limit = kind
    nulls = None in values
    try:
        if what == _FLOAT:
            for v in values:
                t = type(v)
                if not (t is float and (limit is None or -limit <= v <= limit)
                        or t is int and -_EXACT <= v <= _EXACT or v is None):
                    return None
            return np.array(values, dtype=dtype)
        if what == _INT:
            for v in values:
                if not (type(v) is int or v is None):
                    return None
            if not nulls:
                return np.array(values, dtype=dtype)  # out of the type's range: OverflowError
            if any(v is not None and not -_EXACT <= v <= _EXACT for v in values):
                return None
            return np.array(values, dtype=np.float64)
        if any(type(v) is not bool and v is not None for v in values):
            return None
        return np.array(values, dtype=np.float64 if nulls else dtype)
    except (OverflowError, TypeError, ValueError):  # the table says what is wrong
        return None


def _resolve(spec: InputSpec, i: int, values: list, statuses: list[str] | None, entity) -> list:
    """``values`` with the policy applied to its missing entries."""
    missing = [j for j, v in enumerate(values) if v is None or (statuses is not None and statuses[j] != _PRESENT)]
    if spec.on_missing == "error":
        j = missing[0]
        status = statuses[j] if statuses is not None and statuses[j] != _PRESENT else "NULL_VALUE"
        raise MissingFeatureError(spec.uri, spec.columns[i], entity(j), status, len(missing))
    fill = spec.defaults[i] if spec.on_missing == "default" else None
    values = list(values)
    for j in missing:
        values[j] = fill
    return values


def _array(spec: InputSpec, i: int, values: list) -> pa.Array:
    try:
        return pa.array(values, type=spec.types[i])
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError) as exc:
        raise InputError(f"model {spec.uri}: input {spec.columns[i]!r} must hold {spec.types[i]} values: "
                         f"{exc}") from None


def request_values(spec: InputSpec, request: Any, name: str, n: int) -> list:
    """The values of request field ``name`` for ``n`` entity rows, from columns or rows, as
    sent; InputError when they are not there."""
    if isinstance(request, Mapping):
        values = request.get(name)
        if isinstance(values, tuple) or (hasattr(values, "tolist") and not isinstance(values, (str, bytes))):
            values = values.tolist() if hasattr(values, "tolist") else list(values)
        if values is not None and not isinstance(values, list):
            raise InputError(f"request field {name!r} must be a list of values, one per entity row")
    elif request is not None:
        values = [row.get(name) for row in request] if all(name in row for row in request) else None
    else:
        values = None
    if values is None:
        raise InputError(f"model {spec.uri} takes request field {name!r} with the entities; send its values "
                         f"(its request fields: {', '.join(spec.request_fields)})")
    if len(values) != n:
        raise InputError(f"request field {name!r} has {len(values)} values for {n} entity rows")
    return values


def _entity(response: Any, spec: InputSpec, join_keys: Sequence[str] | None, j: int) -> dict[str, Any]:
    names = response.feature_names
    if join_keys is None:
        first = min((names.index(c) for c in spec.feature_columns if c in names), default=0)
        join_keys = names[:first]
    return {k: response.values[names.index(k)][j] for k in join_keys if k in names}


def fill_missing(version: ModelVersion | InputSpec, table: pa.Table, entity_columns: Sequence[str]) -> pa.Table:
    """``table`` (point-in-time rows holding the input columns) with the policy applied to
    their nulls; ``entity_columns`` name the entity of a row in a ``MissingFeatureError``."""
    spec = version if isinstance(version, InputSpec) else input_spec(version)
    if spec.on_missing == "null":
        return table
    for i, name in enumerate(spec.columns):
        column = table.column(name)
        if not column.null_count:
            continue
        if spec.on_missing == "error":
            j = pc.index(pc.is_null(column), True).as_py()
            entity = {c: table.column(c)[j].as_py() for c in entity_columns}
            raise MissingFeatureError(spec.uri, name, entity, "NULL_VALUE", column.null_count)
        fill = pa.scalar(spec.defaults[i], type=column.type)
        table = table.set_column(table.schema.get_field_index(name), name, pc.fill_null(column, fill))
    return table
