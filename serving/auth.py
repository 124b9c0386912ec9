"""API keys: who may write (push, materialize) and, with ``auth_reads``, who may read
(and with ``auth_metrics``, who may scrape ``/metrics``).

Keys come from ``serving.api_keys`` in featurestore.yaml or ``FEATURESTORE_API_KEYS``
(comma-separated). A client sends one as ``X-API-Key: <key>`` or ``Authorization: Bearer
<key>``. No key: 401; a key that matches none: 403. With no keys configured everything is
open (the server logs a warning at startup).

A given key is compared with every configured key with ``hmac.compare_digest`` and no
early exit, so the time taken does not tell how much of a key was right or which key
matched. Keys never appear in a log line or an error message.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence

from fastapi import Request

from serving.errors import HTTPError

__all__ = ["APIKeyAuth", "require_metrics_reader", "require_reader", "require_writer"]

_SESSION_LABEL = b"featurestore-ui-session"


class APIKeyAuth:
    def __init__(self, keys: Sequence[str] = (), auth_reads: bool = False, auth_metrics: bool = False):
        self._keys = tuple(k.encode() for k in keys if k)
        self.writes = bool(self._keys)
        self.reads = self.writes and auth_reads
        self.metrics = self.writes and auth_metrics

    def check(self, request: Request) -> None:
        """Return if the request carries a valid key; raise a 401 or 403 HTTPError."""
        given = _given_key(request)
        if not given:
            raise HTTPError(
                401, "Unauthorized",
                "this endpoint needs an API key: send it as the X-API-Key header or as Authorization: Bearer <key>",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if not self._matches(given):
            raise HTTPError(403, "Forbidden", "the API key is not valid for this server")

    def valid(self, request: Request) -> bool:
        """Whether the request carries a valid key (never, when no key is configured)."""
        given = _given_key(request)
        return bool(given) and self._matches(given)

    def accepts(self, given: str | None) -> bool:
        """Whether ``given`` is a configured key (a key typed into the UI's login form, or
        one sent in a Flight call's headers: serving/flight/auth.py)."""
        return bool(given) and self._matches(given)

    def session_token(self, given: str) -> str:
        """The UI's cookie value for a valid key: an HMAC of the key, so the cookie never
        holds the key itself, and every worker (same keys) recognizes it."""
        return hmac.new(given.encode("utf-8", "surrogateescape"), _SESSION_LABEL, "sha256").hexdigest()

    def accepts_session(self, token: str | None) -> bool:
        """Whether ``token`` is the session token of one of the configured keys."""
        if not token:
            return False
        candidate = token.encode("ascii", "replace")
        matched = False
        for key in self._keys:  # no early exit, as for keys
            matched |= hmac.compare_digest(hmac.new(key, _SESSION_LABEL, "sha256").hexdigest().encode(), candidate)
        return matched

    def _matches(self, given: str) -> bool:
        candidate = given.encode("utf-8", "surrogateescape")
        matched = False
        for key in self._keys:  # no early exit: the time taken is the same whichever key matches
            matched |= hmac.compare_digest(key, candidate)
        return matched

    def __repr__(self) -> str:  # never show the keys
        return f"APIKeyAuth(keys={len(self._keys)}, reads={self.reads}, metrics={self.metrics})"


def _given_key(request: Request) -> str | None:
    given = request.headers.get("x-api-key")
    if given is None:
        authorization = request.headers.get("authorization", "")
        if authorization[:7].lower() == "bearer ":
            given = authorization[7:].strip()
    return given


# Both are ``async`` on purpose: FastAPI runs a plain ``def`` dependency in a thread pool,
# which would cost more than the whole online lookup. Tests may override either one.


async def require_writer(request: Request) -> None:
    """Dependency of the write endpoints: a valid key when any key is configured."""
    auth: APIKeyAuth = request.app.state.serving.auth
    if auth.writes:
        auth.check(request)


async def require_reader(request: Request) -> None:
    """Dependency of the read endpoints: a valid key when ``auth_reads`` is set."""
    auth: APIKeyAuth = request.app.state.serving.auth
    if auth.reads:
        auth.check(request)


async def require_metrics_reader(request: Request) -> None:
    """Dependency of ``/metrics``: a valid key when ``auth_metrics`` is set (off by default,
    so a Prometheus without a key can scrape; its ``authorization`` setting sends one)."""
    auth: APIKeyAuth = request.app.state.serving.auth
    if auth.metrics:
        auth.check(request)
