"""``BoundedCache``: a dict that never holds more than a set number of entries.

Every cache whose keys come from a request (read plans per feature list, their metric
layouts, the online stores' read specs, formatted timestamps) is one of these, so no
sequence of requests can grow a server's memory without bound. Eviction is first in,
first out: a lookup stays a plain ``dict.get`` (the hot path pays nothing), and an entry
evicted while still in use is only built once more.
"""

from __future__ import annotations

from typing import Generic, TypeVar

__all__ = ["BoundedCache"]

K = TypeVar("K")
V = TypeVar("V")


class BoundedCache(dict, Generic[K, V]):
    """Read it as a dict; write it with ``put``, which drops the oldest entry when full."""

    __slots__ = ("limit",)

    def __init__(self, limit: int):
        super().__init__()
        if limit < 1:
            raise ValueError(f"a cache must hold at least one entry, not {limit}")
        self.limit = limit

    def put(self, key: K, value: V) -> V:
        """Store ``value`` under ``key`` and return it."""
        if len(self) >= self.limit and key not in self:
            del self[next(iter(self))]
        self[key] = value
        return value

    def __repr__(self) -> str:
        return f"BoundedCache({len(self)}/{self.limit})"
