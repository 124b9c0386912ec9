"""How a browser passes the API key to the UI when ``serving.auth_reads`` is on.

A browser cannot send ``X-API-Key`` by itself, so the UI also takes:
- the login form (``/ui/login``): the key typed once, posted, and kept as a cookie;
- ``?key=<key>`` on any UI address, once (a bookmark, a link from a runbook): the answer
  sets the same cookie and redirects to the address without the key, so it does not stay
  in the address bar or the history.

The cookie holds an HMAC of the key, not the key (``APIKeyAuth.session_token``); it is
``HttpOnly``, ``SameSite=Strict``, scoped to the UI's path, ``Secure`` over HTTPS, and
lasts ``SESSION_SECONDS``. ``/ui/logout`` drops it. Clients that can send headers (curl,
a proxy) send the key as for every other read. Without ``auth_reads`` the UI is open, as
the read endpoints are. The UI only reads: it has no action a forged request could take.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from serving.auth import APIKeyAuth
from serving.ui.render import render

__all__ = ["COOKIE", "SESSION_SECONDS", "guard", "log_in", "log_out", "login_form"]

COOKIE = "featurestore_ui"
SESSION_SECONDS = 8 * 3600
_OPEN_PATHS = ("/login", "/static/ui.css")


async def guard(request: Request, call_next) -> Response:
    """The UI's gate: a ``?key=`` is traded for the cookie; with ``auth_reads`` a page
    needs a valid key header or cookie, else the login form answers (401)."""
    auth: APIKeyAuth = request.app.state.serving.auth
    given = request.query_params.get("key")
    if given is not None:
        if not auth.accepts(given):
            return login_form(request, "that key is not valid for this server", status=403)
        rest = urlencode([(k, v) for k, v in request.query_params.multi_items() if k != "key"])
        return _signed_in(request, auth, given, request.url.path + (f"?{rest}" if rest else ""))
    request.state.trusted = auth.valid(request) or auth.accepts_session(request.cookies.get(COOKIE))
    if auth.reads and not request.state.trusted and _inner_path(request) not in _OPEN_PATHS:
        return login_form(request, None, status=401)
    return await call_next(request)


async def log_in(request: Request) -> Response:
    """``POST /ui/login`` with the form's ``key`` and ``next``."""
    auth: APIKeyAuth = request.app.state.serving.auth
    body = await request.body()
    form = parse_qs(body[:8192].decode("utf-8", "replace"))
    key, target = (form.get("key") or [""])[0], (form.get("next") or [""])[0]
    if not auth.accepts(key):
        return login_form(request, "that key is not valid for this server", status=403, target=target)
    return _signed_in(request, auth, key, _safe_target(request, target))


def log_out(request: Request) -> Response:
    response = RedirectResponse(_root(request) + "/login", status_code=303)
    response.delete_cookie(COOKIE, path=_root(request) + "/")
    return response


def login_form(request: Request, message: str | None, status: int = 200, target: str | None = None) -> Response:
    if target is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        if _inner_path(request) in ("/login", "/logout"):
            target = _root(request) + "/"
    return render(request, "login.html", {"message": message, "next": _safe_target(request, target),
                                          "needs_key": request.app.state.serving.auth.reads}, status=status,
                  **({"WWW-Authenticate": "Bearer"} if status == 401 else {}))


def _signed_in(request: Request, auth: APIKeyAuth, key: str, target: str) -> Response:
    response = RedirectResponse(target, status_code=303)  # a relative Location: no Host header in it
    response.set_cookie(COOKIE, auth.session_token(key), max_age=SESSION_SECONDS, path=_root(request) + "/",
                        httponly=True, samesite="strict", secure=request.url.scheme == "https")
    return response


def _safe_target(request: Request, target: str) -> str:
    """``target`` when it is a page of this UI, else the UI's front page (no open redirect)."""
    root = _root(request)
    if target.startswith(root + "/") and not target.startswith("//") and "\\" not in target:
        return target
    return root + "/"


def _root(request: Request) -> str:
    return request.scope.get("root_path", "")


def _inner_path(request: Request) -> str:
    path = request.url.path
    root = _root(request)
    return path[len(root):] if path.startswith(root) else path
