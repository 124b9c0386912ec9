"""Engine slots: how many training sets and batch scorings the server runs at once.

A point-in-time join over millions of rows takes the engine's threads and memory; several
clients at once would each get a fraction and all run out of memory together. So each
such call holds one of ``flight.slots`` from before the join until its last batch is sent
(or its client leaves); the others wait up to ``flight.slot_timeout`` seconds, then are
refused with an error saying so. Online reads, listings and pushes need no slot.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from featurestore.errors import BusyError

__all__ = ["EngineSlots"]


class EngineSlots:
    def __init__(self, slots: int, timeout: float):
        self.slots, self.timeout = slots, timeout
        self._free = threading.BoundedSemaphore(slots)
        self._lock = threading.Lock()
        self._in_use = 0

    @property
    def in_use(self) -> int:
        """Slots held now (the server's tests and its log read it)."""
        return self._in_use

    @contextmanager
    def hold(self, what: str) -> Iterator[None]:
        """One slot for the body; BusyError when none frees up in time."""
        if not self._free.acquire(timeout=self.timeout):
            raise BusyError(
                f"{what}: all {self.slots} engine slot(s) of the server stayed busy for {self.timeout:g} s "
                "(flight.slots, flight.slot_timeout); retry later, or raise flight.slots on the server",
                store="the Flight server")
        with self._lock:
            self._in_use += 1
        try:
            yield
        finally:
            with self._lock:
                self._in_use -= 1
            self._free.release()
