"""What never leaves the process in clear: passwords in URLs and API keys.

Config objects mask them in their ``repr`` (so a notebook cell or a log line printing a
config shows ``redis://:***@host``), and errors name a Redis by its masked URL.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

__all__ = ["mask_url", "masked"]


def mask_url(url: str) -> str:
    """The URL with its password (in the userinfo or a ``password=`` query) replaced by ***."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if parts.password is not None:
            netloc = f"{parts.username or ''}:***@{netloc.rpartition('@')[2]}"
        query = parts.query
        if parts.password is None and "password" not in query:
            return url
        if "password" in query:
            query = urlencode([(k, "***" if k == "password" else v) for k, v in parse_qsl(query)], safe="*")
        return urlunsplit(parts._replace(netloc=netloc, query=query))
    except ValueError:
        return "<unparsable URL>"


def masked(value: Any) -> Any:
    """``value`` with every URL in it masked, through nested mappings and lists (for the
    free-form config sections, such as ``streaming.redis_url``)."""
    if isinstance(value, str):
        return mask_url(value) if "://" in value else value
    if isinstance(value, Mapping):
        return {k: masked(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(masked(v) for v in value)
    return value
