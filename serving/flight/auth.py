"""API keys on the Flight server, as on the HTTP server (serving/auth.py, docs/security.md).

A client sends its key as the ``x-api-key`` header or ``authorization: Bearer <key>``
(Feast's client sends the token of ``auth: {type: oidc, token: ...}`` that way). The
middleware only reads the headers when a call starts; each handler then asks for what its
operation needs, because the operation is in the call's body, not its headers: reads need
a key when ``auth_reads`` is set, writes whenever keys are configured. No key:
``FlightUnauthenticatedError``; a key that matches none: ``FlightUnauthorizedError``.
"""

from __future__ import annotations

import pyarrow.flight as flight

from featurestore.remote.wire import API_KEY_HEADER
from serving.auth import APIKeyAuth

__all__ = ["MIDDLEWARE", "KeyMiddleware", "KeyMiddlewareFactory", "require_key"]

MIDDLEWARE = "featurestore-key"


class KeyMiddleware(flight.ServerMiddleware):
    """What one call's headers said: whether they carried a key, and whether it is valid."""

    def __init__(self, given: bool, valid: bool):
        super().__init__()
        self.given, self.valid = given, valid


class KeyMiddlewareFactory(flight.ServerMiddlewareFactory):
    def __init__(self, auth: APIKeyAuth):
        super().__init__()
        self.auth = auth

    def start_call(self, info, headers) -> KeyMiddleware:
        given = _first(headers, API_KEY_HEADER)
        if given is None:
            authorization = _first(headers, "authorization") or ""
            if authorization[:7].lower() == "bearer ":
                given = authorization[7:].strip()
        return KeyMiddleware(bool(given), self.auth.accepts(given))


def require_key(context: flight.ServerCallContext, auth: APIKeyAuth, write: bool) -> None:
    """Return when the call may go on; raise the Flight error a refused call gets."""
    if not (auth.writes if write else auth.reads):
        return
    seen = context.get_middleware(MIDDLEWARE)
    if seen is None or not seen.given:
        what = "writes" if write else "reads (serving.auth_reads is on)"
        raise flight.FlightUnauthenticatedError(
            f"this server needs an API key for {what}: pass api_key= to FeatureStore.remote, or send it as the "
            f"{API_KEY_HEADER} header or authorization: Bearer <key> (a Feast client: auth: {{type: oidc, token: <key>}})")
    if not seen.valid:
        raise flight.FlightUnauthorizedError("the API key is not valid for this server")


def _first(headers: dict, name: str) -> str | None:
    values = headers.get(name) or ()
    value = values[0] if values else None
    return value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else value
