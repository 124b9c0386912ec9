"""``new_request_id``: the id of a request that did not send an ``X-Request-ID``.

32 hex characters, as ``uuid.uuid4().hex``, at a tenth of its cost (~0.3 us against
~3 us: a /predict makes one per request): 80 random bits drawn once per process, then
a 48-bit counter. A forked worker draws its own random part, so two processes never
share a prefix (the odds of two equal 80-bit draws are negligible).
"""

from __future__ import annotations

import itertools
import os

__all__ = ["new_request_id"]


def _reseed() -> None:
    global _prefix, _counter
    _prefix, _counter = os.urandom(10).hex(), itertools.count()


_prefix: str
_counter: itertools.count
_reseed()
os.register_at_fork(after_in_child=_reseed)


def new_request_id() -> str:
    return f"{_prefix}{next(_counter) & 0xFFFFFFFFFFFF:012x}"
