"""The HTTP/1.1 protocol ``featurestore serve`` gives uvicorn: httptools', with two guards.

- **A deadline for request headers.** uvicorn closes a kept-alive connection that stays
  idle (``timeout_keep_alive``), but nothing bounds a connection that is opened and then
  sends nothing, or its headers a byte at a time: a few thousand such clients would hold
  a server's sockets forever (slowloris). Here a connection must deliver a request's full
  headers within ``serving.header_timeout`` seconds of opening, or of the previous
  answer, or it is closed. The body has its own deadline, enforced where it is read
  (``serving.body.read_json``: 408). Once a request's headers are in, the app owns it.
- **A size limit for request headers.** httptools takes headers of any size (megabytes
  of them make a request like any other); past ``MAX_HEADER_BYTES`` the answer is 431.
- **JSON errors.** What this layer answers by itself before the app sees a request (400
  for a request that is not valid HTTP, 431 for headers too large) has the same JSON
  error body as the app's answers. (A connection closed for stalled headers gets no
  answer: there may be no request to answer.)

``serve`` passes the deadline in ``FEATURESTORE_HEADER_TIMEOUT`` (like the repo in
``FEATURESTORE_REPO``) so that every worker process reads it.
"""

from __future__ import annotations

import asyncio
import json
import os

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = ["HEADER_TIMEOUT_ENV", "MAX_HEADER_BYTES", "GuardedHttpProtocol"]

HEADER_TIMEOUT_ENV = "FEATURESTORE_HEADER_TIMEOUT"
#: The most bytes a request's line and headers may take (nginx allows 32 KiB by default).
MAX_HEADER_BYTES = 64 * 1024


class GuardedHttpProtocol(HttpToolsProtocol):
    header_timeout: float | None = None  # read from the environment by the first connection

    _header_timer: asyncio.TimerHandle | None = None  # set while waiting for a request's headers
    _header_bytes = 0
    _discarding = False  # answered and closing: what the client still sends is dropped

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        if self._discarding:
            return
        super().data_received(data)
        if self._header_timer is not None:  # still in the headers after this chunk
            self._header_bytes += len(data)
            if self._header_bytes > MAX_HEADER_BYTES and not self.transport.is_closing():
                self._disarm()
                self._send_error(431, "Request Header Fields Too Large", "RequestHeaderFieldsTooLarge",
                                 f"the request's headers are larger than {MAX_HEADER_BYTES:,} bytes; send fewer "
                                 "or shorter headers", linger=True)

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.pipeline and not self.transport.is_closing():
            self._arm()  # waiting for the next request's headers

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def send_400_response(self, msg: str) -> None:
        self._send_error(400, "Bad Request", "BadRequest", f"the request is not valid HTTP/1.1 ({msg.rstrip('.')})")

    def _send_error(self, status: int, reason: str, type: str, message: str, linger: bool = False) -> None:
        """Answer with the JSON error body and close the connection. ``linger``: the client
        is still sending; closing at once with its bytes unread would reset the connection
        and lose the answer, so signal the end of the answer, drop what still comes for a
        second, then close."""
        body = json.dumps({"error": {"type": type, "message": message}}).encode()
        content = [b"HTTP/1.1 %d %b\r\n" % (status, reason.encode())]
        for name, value in self.server_state.default_headers:
            content.extend([name, b": ", value, b"\r\n"])
        content.extend([b"content-type: application/json\r\n", b"content-length: %d\r\n" % len(body),
                        b"connection: close\r\n\r\n", body])
        self.transport.write(b"".join(content))
        if linger and self.transport.can_write_eof():
            self.transport.write_eof()
            self._discarding = True
            self.loop.call_later(1.0, self.transport.close)
        else:
            self.transport.close()

    def _arm(self) -> None:
        self._disarm()
        self._header_bytes = 0
        timeout = GuardedHttpProtocol.header_timeout
        if timeout is None:
            timeout = GuardedHttpProtocol.header_timeout = float(os.environ.get(HEADER_TIMEOUT_ENV) or 10.0)
        self._header_timer = self.loop.call_later(timeout, self._headers_too_slow)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            self.transport.close()
