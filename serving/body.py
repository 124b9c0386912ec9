"""Reading a JSON request body within the size limit, and checking its fields by hand.

The routes read bodies themselves instead of declaring pydantic models: on the online
hot path, model validation would cost more than the lookup. ``serving.schemas`` still
describes each body for the OpenAPI docs.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request

from featurestore.errors import InputError
from serving.errors import HTTPError

__all__ = ["field", "read_json"]

_MISSING = object()


def _too_large(limit: int) -> HTTPError:
    return HTTPError(413, "PayloadTooLarge",
                     f"the request body is larger than the server's limit of {limit:,} bytes "
                     "(serving.max_body_bytes); send fewer rows per request")


async def read_json(request: Request, limit: int) -> dict[str, Any]:
    """The request's JSON object. 413 past ``limit`` bytes (checked before reading when
    Content-Length is given, while reading otherwise), 400 for malformed JSON, 422 for
    JSON that is not an object."""
    length = request.headers.get("content-length")
    if length is not None:
        if not length.isdigit():
            raise HTTPError(400, "BadRequest", f"Content-Length {length!r} is not a number")
        if int(length) > limit:
            raise _too_large(limit)
        body = await request.body()
    else:
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise _too_large(limit)
            chunks.append(chunk)
        body = b"".join(chunks)
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise HTTPError(400, "BadRequest", f"the request body is not valid JSON ({exc})") from None
    except RecursionError:
        raise HTTPError(400, "BadRequest", "the request body nests JSON too deeply") from None
    if type(data) is not dict:
        raise InputError(f"the request body must be a JSON object, not {type(data).__name__}")
    return data


def field(body: dict[str, Any], name: str, kind: type | tuple[type, ...], default: Any = _MISSING) -> Any:
    """``body[name]`` if it has the JSON type ``kind``; ``default`` when absent or null."""
    value = body.get(name)
    if value is None:
        if default is _MISSING:
            raise InputError(f"the request body needs {name!r}")
        return default
    if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _types(kind)):
        expected = " or ".join(_JSON_NAMES.get(t, t.__name__) for t in _types(kind))
        raise InputError(f"{name!r} must be {expected}, not {_JSON_NAMES.get(type(value), type(value).__name__)}")
    return value


def _types(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


_JSON_NAMES = {dict: "an object", list: "a list", str: "a string", bool: "true or false", int: "an integer",
               float: "a number"}
