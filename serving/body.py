"""Reading a JSON request body within the size limit, and checking its fields by hand.

The routes read bodies themselves instead of declaring pydantic models: on the online
hot path, model validation would cost more than the lookup. ``serving.schemas`` still
describes each body for the OpenAPI docs.
"""

from __future__ import annotations

import asyncio
import json
import types
from collections.abc import Coroutine, Generator
from typing import Any

from fastapi import Request

from featurestore.errors import InputError
from serving.errors import HTTPError

__all__ = ["field", "parse_entities", "read_json"]

_MISSING = object()


def _too_large(limit: int) -> HTTPError:
    return HTTPError(413, "PayloadTooLarge",
                     f"the request body is larger than the server's limit of {limit:,} bytes "
                     "(serving.max_body_bytes); send fewer rows per request")


async def read_json(request: Request, limit: int, timeout: float = 10.0) -> dict[str, Any]:
    """The request's JSON object. 413 past ``limit`` bytes (checked before reading when
    Content-Length is given, while reading otherwise), 408 when the body takes longer
    than ``timeout`` seconds to arrive (a stalled client would hold its connection and
    this task forever; the connection is closed), 400 for malformed JSON, 422 for JSON
    that is not an object. A client that disconnects mid-body raises starlette's
    ``ClientDisconnect`` (answered in ``serving.errors``)."""
    length = request.headers.get("content-length")
    if length is not None:
        if not length.isdigit():
            raise HTTPError(400, "BadRequest", f"Content-Length {length!r} is not a number")
        if int(length) > limit:
            raise _too_large(limit)
    try:
        body = await _within(request.body() if length is not None else _chunked(request, limit), timeout)
    except TimeoutError:
        raise HTTPError(408, "RequestTimeout",
                        f"the request body did not arrive within {timeout:g} s (serving.body_timeout); "
                        "send the body with the headers", headers={"Connection": "close"}) from None
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise HTTPError(400, "BadRequest", f"the request body is not valid JSON ({exc})") from None
    except RecursionError:
        raise HTTPError(400, "BadRequest", "the request body nests JSON too deeply") from None
    if type(data) is not dict:
        raise InputError(f"the request body must be a JSON object, not {type(data).__name__}")
    return data


async def _within(coro: Coroutine[Any, Any, bytes], timeout: float) -> bytes:
    """What ``coro`` returns, or TimeoutError when it takes longer than ``timeout`` seconds.
    A body usually arrives with its headers, and reading it then never waits: so ``coro``
    takes its first step here, and only when it has to wait is the rest of it timed (a
    timer per request cost as much as the read)."""
    try:
        waiting_for = coro.send(None)
    except StopIteration as done:
        return done.value
    async with asyncio.timeout(timeout):
        return await _resume(coro, waiting_for)


@types.coroutine
def _resume(coro: Coroutine[Any, Any, bytes], waiting_for: Any) -> Generator[Any, Any, bytes]:
    """Await the rest of ``coro``, which has taken its first step and is ``waiting_for`` a
    future: what the task sends or throws in goes on to ``coro``, as ``await`` would do."""
    while True:
        try:
            sent = yield waiting_for
        except GeneratorExit:
            coro.close()
            raise
        except BaseException as exc:  # the task's cancellation (the timeout's) included
            step = coro.throw
            sent = exc
        else:
            step = coro.send
        try:
            waiting_for = step(sent)
        except StopIteration as done:
            return done.value


async def _chunked(request: Request, limit: int) -> bytes:
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


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


def parse_entities(body: dict[str, Any], max_entities: int) -> dict[str, Any] | list:
    """The entity rows of an online request (``/get-online-features``, ``/predict``):
    ``entities`` column-major (join key -> values) with ``request`` fields merged in, or a
    list of row objects; InputError for another shape or more than ``max_entities`` rows."""
    entities = body.get("entities")
    if type(entities) is dict:
        n = max((len(v) if type(v) is list else 1 for v in entities.values()), default=0)
    elif type(entities) is list:  # also accepted: a list of row objects
        n = len(entities)
    else:
        raise InputError("'entities' must be an object of join key -> list of values, "
                         'e.g. {"driver_id": [1001, 1002]}')
    request_fields = body.get("request")
    if request_fields is not None:  # on-demand views' request fields, beside the join keys
        if type(request_fields) is not dict or type(entities) is not dict:
            raise InputError("'request' must be an object of request field -> list of values, given with "
                             "column-major 'entities' (with a list of rows, put the fields in each row)")
        entities = {**entities, **request_fields}
    if n > max_entities:
        raise InputError(f"{n:,} entity rows is more than this server's limit of {max_entities:,} per request "
                         "(serving.max_entities); split the request")
    return entities
