"""What an HTTP caller without a valid API key may learn about the server's insides.

A failing dependency's error (503), a failed job or setup (500), ``/ready`` and the job
records of ``GET /jobs`` can name absolute file paths, Redis hosts and the host and pid of
a job's owner. The server log always has them in full; an HTTP answer carries them only
to a caller that sent a valid API key. Every other caller, which includes everyone when
no key is configured, gets the same answer with them left out:

- an unreachable store or registry is named, not located: "the online store is
  unavailable", "the registry cannot be read";
- other messages (and the ``error`` of a job record) have URLs, absolute paths and
  ``host:pid`` of lock owners cut out; a job's ``owner`` is its label (``scheduler``,
  ``materialize``, ``backfill``) without ``@host:pid:token``.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import Request

from featurestore.errors import FeatureStoreError, RegistryError, StoreUnavailableError

__all__ = ["public_job", "public_message", "scrub", "trusted"]

_URL = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"),;]+")
# An absolute path of at least two segments, not inside a word (so "and/or", "1/2" and an
# endpoint such as "/jobs" stay as they are).
_PATH = re.compile(r"(?<![\w.:/])(?:~|/[^\s'\"/:,;()]+)(?:/[^\s'\"/:,;()]*)+")
# A lock owner (featurestore.jobs.locks.owner_id): label@host:pid:token, or as
# describe_owner prints it: "label on host (pid 123)".
_OWNER = re.compile(r"\b([\w.-]+)@[\w.-]+:\d+(?::[0-9a-f]+)?")
_OWNER_TEXT = re.compile(r"\b([\w.-]+) on [\w.-]+ \(pid \d+\)")


def trusted(request: Request) -> bool:
    """Whether the request carries a valid API key (False when none is configured)."""
    auth = getattr(getattr(request.app.state, "serving", None), "auth", None)
    return auth is not None and auth.valid(request)


def scrub(text: str) -> str:
    """``text`` without URLs, absolute paths and lock owners' hosts and pids."""
    text = _URL.sub("<url>", text)
    text = _OWNER.sub(r"\1", text)
    text = _OWNER_TEXT.sub(r"\1 (another process)", text)
    return _PATH.sub("<path>", text)


def public_message(exc: FeatureStoreError) -> str:
    """The message of a server-side error (5xx) for a caller without a valid key."""
    if isinstance(exc, StoreUnavailableError):
        return f"{exc.store} is unavailable; retry later (the server log has the details)"
    if isinstance(exc, RegistryError):
        return "the registry cannot be read; retry later (the server log has the details)"
    return scrub(str(exc))


def public_job(record: dict[str, Any]) -> dict[str, Any]:
    """A job record (``featurestore.jobs.runner.record_json``) for a caller without a valid key."""
    out = dict(record)
    if isinstance(out.get("owner"), str):
        out["owner"] = out["owner"].partition("@")[0]
    if isinstance(out.get("error"), str):
        out["error"] = scrub(out["error"])
    return out
