"""``read_json``: a body read whole when it came with its headers, or as its pieces arrive
within the body timeout; 408 when it stalls past it."""

from __future__ import annotations

import asyncio

import pytest
from starlette.requests import ClientDisconnect, Request

from serving.body import read_json
from serving.errors import HTTPError


def _request(pieces: list[tuple[float, bytes]], length: int | None, then: str = "end") -> Request:
    """A request whose body arrives as ``pieces`` (seconds to wait, bytes); ``then`` the body
    ends, the client sends nothing more (``stall``) or it leaves (``leave``)."""
    messages = list(pieces)

    async def receive() -> dict:
        if not messages:
            if then == "leave":
                return {"type": "http.disconnect"}
            await asyncio.sleep(3600)
        delay, chunk = messages.pop(0)
        if delay:
            await asyncio.sleep(delay)
        return {"type": "http.request", "body": chunk, "more_body": bool(messages) or then != "end"}

    headers = [(b"content-length", str(length).encode())] if length is not None else []
    return Request({"type": "http", "method": "POST", "path": "/", "headers": headers}, receive)


@pytest.mark.parametrize("length", [14, None])
def test_a_body_that_came_with_its_headers_is_read(length):
    assert asyncio.run(read_json(_request([(0, b'{"entities":1}')], length), 1000, 1.0)) == {"entities": 1}


@pytest.mark.parametrize("length", [14, None])
def test_a_body_arriving_in_pieces_within_the_timeout_is_read(length):
    pieces = [(0, b'{"enti'), (0.05, b'ties"'), (0.05, b":1}")]
    assert asyncio.run(read_json(_request(pieces, length), 1000, 1.0)) == {"entities": 1}


@pytest.mark.parametrize("length", [14, None])
def test_a_body_that_stalls_past_the_timeout_is_408(length):
    with pytest.raises(HTTPError) as raised:
        asyncio.run(read_json(_request([(0, b'{"enti')], length, "stall"), 1000, 0.1))
    assert raised.value.status == 408 and raised.value.type == "RequestTimeout"


def test_a_client_that_leaves_mid_body_raises_client_disconnect():
    with pytest.raises(ClientDisconnect):
        asyncio.run(read_json(_request([(0.01, b'{"enti')], 14, "leave"), 1000, 1.0))


def test_a_read_cancelled_while_waiting_for_the_body_is_cancelled():
    async def cancel_mid_body() -> None:
        task = asyncio.create_task(read_json(_request([(0, b'{"enti')], 14, "stall"), 1000, 5.0))
        await asyncio.sleep(0.05)
        task.cancel()
        await task

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(cancel_mid_body())
