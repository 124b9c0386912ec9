"""The JSON answer of ``POST /get-online-features``, in Feast's shape.

::

    {"metadata": {"feature_names": ["driver_id", "conv_rate"]},
     "results": [{"values": [1001, 1002], "statuses": ["PRESENT", "PRESENT"],
                  "event_timestamps": ["1970-01-01T00:00:00Z", "1970-01-01T00:00:00Z"]},
                 {"values": [0.52, null], "statuses": ["PRESENT", "NOT_FOUND"],
                  "event_timestamps": ["2024-05-01T12:00:00Z", "1970-01-01T00:00:00Z"]}]}

``results[i]`` is ``feature_names[i]`` (join keys first) and its lists hold one item per
entity row. Event timestamps are RFC 3339 in UTC with 0, 3 or 6 fractional digits, the way
Feast's server prints protobuf Timestamps; where there is no event time (a join key, an
entity not found) it is the epoch, as in Feast. Values: numbers, strings, booleans, lists;
UnixTimestamp values as RFC 3339 strings, Bytes as base64; NaN and infinities as null (JSON
has no spelling for them).

The body is built straight from the column-major ``OnlineResponse`` with the C JSON
encoder; a view's timestamps are formatted once for all its features and cached by value.
"""

from __future__ import annotations

import base64
import json
import math
import time
from datetime import date, datetime, timezone
from typing import Any

from featurestore.bounded import BoundedCache
from featurestore.online.read import OnlineResponse

__all__ = ["EPOCH", "json_bytes", "online_body", "online_response_json", "rfc3339"]

EPOCH = "1970-01-01T00:00:00Z"

# Served timestamps repeat (a materialization writes few distinct ones), so this rarely fills.
_formatted: BoundedCache[int, str] = BoundedCache(65_536)


def rfc3339(us: int | None) -> str:
    """Microseconds since the epoch as an RFC 3339 UTC string; None as the epoch."""
    if us is None:
        return EPOCH
    text = _formatted.get(us)
    if text is None:
        seconds, fraction = divmod(us, 1_000_000)
        text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
        if fraction == 0:
            text += "Z"
        elif fraction % 1000 == 0:
            text += f".{fraction // 1000:03d}Z"
        else:
            text += f".{fraction:06d}Z"
        _formatted.put(us, text)
    return text


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if callable(getattr(value, "tolist", None)):  # a numpy scalar or array a model returned
        return value.tolist()
    raise TypeError(f"cannot encode {type(value).__name__} in JSON")


def _make_encoder():
    """The C encoder made once (``JSONEncoder.encode`` builds a new one on every call)."""
    from json import encoder

    if encoder.c_make_encoder is None:  # not CPython's C accelerator: the plain way
        return json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=_default).encode
    # markers=None: no cycle check (the answer is built here, it has none); allow_nan=False
    make = encoder.c_make_encoder(None, _default, encoder.encode_basestring, None, ":", ",", False, False, False)
    return lambda value: "".join(make(value, 0))


_encode = _make_encoder()


def online_body(response: OnlineResponse) -> dict[str, Any]:
    """The answer's JSON-able dict (``/predict`` nests one for ``include_features``)."""
    results = []
    by_list: dict[int, list[str]] = {}  # a view's features share one timestamp list
    for values, statuses, stamps in zip(response.values, response.statuses, response.event_timestamps):
        formatted = by_list.get(id(stamps))
        if formatted is None:
            formatted = by_list[id(stamps)] = [rfc3339(t) for t in stamps]
        results.append({"values": values, "statuses": statuses, "event_timestamps": formatted})
    return {"metadata": {"feature_names": response.feature_names}, "results": results}


def online_response_json(response: OnlineResponse) -> bytes:
    return json_bytes(online_body(response))


def json_bytes(body: Any) -> bytes:
    """``body`` as compact JSON; NaN and infinities (which JSON cannot spell) as null."""
    try:
        return _encode(body).encode()
    except ValueError:  # NaN or infinity somewhere: rare, so only then look for them
        return _encode(_finite(body)).encode()


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, list):
        return [_finite(v) for v in value]
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    return value
