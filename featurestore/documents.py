"""Map, Json and Struct values between Python (dicts, JSON text, parsed JSON) and their
Arrow types (featurestore/types.py): what a push or an online answer holds becomes a
column of ``map<string, string>``, ``large_string`` JSON text or ``struct<...>``."""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa

__all__ = ["document_array", "is_document"]


def is_document(dtype: pa.DataType) -> bool:
    """Whether ``dtype`` is the Arrow type of Map, Json or Struct (Json alone is large_string)."""
    return pa.types.is_map(dtype) or pa.types.is_struct(dtype) or pa.types.is_large_string(dtype)


def document_array(values: list[Any], dtype: pa.DataType) -> pa.Array:
    """``values`` as an Arrow array of ``dtype``: Json takes JSON text (checked) or any JSON
    value; Map a dict (its values spelt as strings, as Feast's Arrow type has them); Struct
    a dict of its members (both also as JSON text). Raises ValueError naming the first value
    that does not fit."""
    if pa.types.is_large_string(dtype):
        out = [v if v is None else _text(v) for v in values]
        return pa.array(out, type=dtype)
    # Feast's remote client sends Map and Struct values as JSON text.
    values = [json.loads(v) if isinstance(v, str) else v for v in values]
    if pa.types.is_map(dtype):
        out = [v if v is None else [(str(k), _string(x)) for k, x in _pairs(v)] for v in values]
    else:
        out = values
    try:
        return pa.array(out, type=dtype)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError) as exc:
        raise ValueError(str(exc).splitlines()[0]) from None


def _text(value: Any) -> str:
    if isinstance(value, str):
        json.loads(value)  # JSON text must parse (json.JSONDecodeError is a ValueError)
        return value
    return json.dumps(value)


def _pairs(value: Any) -> list:
    if isinstance(value, dict):
        return list(value.items())
    if isinstance(value, list) and all(isinstance(p, (list, tuple)) and len(p) == 2 for p in value):
        return value
    raise ValueError(f"{value!r} is not a mapping")


def _string(value: Any) -> str | None:
    return value if value is None or isinstance(value, str) else json.dumps(value)
