"""``ModelRunner``: model calls off the event loop, each within a deadline.

A model call is CPU work of unknown length in someone else's code. Run on the event loop
it would be cheapest (about 1 us of overhead) but a slow or hung model would stall every
request of the worker, and no deadline could be enforced. So calls go to a few threads
of their own, and the caller awaits the answer for at most the model's timeout; past it
the request answers 504 while the call finishes (or not) by itself in its thread.

Why not ``loop.run_in_executor``: ``bench/model_hop.py`` times a 1 us numpy model called
each way. On the shared 2-core dev machine (load average 8 to 14) the executor hop cost
p50 37-49 us and p99 3.2-5.4 ms; this runner's (threads blocking on a ``SimpleQueue``,
answered with ``call_soon_threadsafe``) p50 24-39 us and p99 0.5-2.1 ms; inline, 1 us.
The executor adds a work item, a semaphore and ``concurrent.futures`` bookkeeping per call.

A call that times out keeps its thread busy, so the runner starts a spare thread in its
place, and that thread exits when the call returns. A model that hangs forever therefore
costs at most ``max_spare`` threads beyond ``size``; past that, calls wait in the queue
(and time out) until a hung call returns.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from queue import SimpleQueue
from typing import Any

__all__ = ["ModelRunner"]

_STOP = object()


class ModelRunner:
    def __init__(self, size: int = 2, max_spare: int = 16, name: str = "featurestore-model"):
        self.size, self.max_spare, self.name = size, max_spare, name
        self._queue: SimpleQueue = SimpleQueue()
        self._lock = threading.Lock()
        self._threads = 0
        self._stopping = False
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop, self._stopping = loop, False
        for _ in range(self.size):
            self._spawn()

    def stop(self) -> None:
        """Ask every thread to exit once its current call is done (none is waited for)."""
        with self._lock:
            self._stopping, self._loop = True, None
            threads = self._threads
        for _ in range(threads):
            self._queue.put(_STOP)

    async def run(self, function: Callable[[Any], Any], argument: Any, timeout: float) -> Any:
        """``function(argument)`` in a runner thread; TimeoutError after ``timeout`` seconds.
        The function's own exception is raised as it is."""
        loop = self._loop
        if loop is None:  # threads start with the first call: a server without models has none
            loop = asyncio.get_running_loop()
            self.start(loop)
        future = loop.create_future()
        call = _Call(future, function, argument)
        self._queue.put(call)
        timer = loop.call_later(timeout, _expire, future)
        try:
            return await future
        except TimeoutError:
            self._replace(call)
            raise
        finally:
            timer.cancel()

    def _replace(self, call: _Call) -> None:
        """A spare thread for the one that runs a timed-out call (which may never return);
        that thread exits when the call returns. None past ``max_spare`` spares."""
        with self._lock:
            if self._stopping or self._threads >= self.size + self.max_spare:
                return
            call.replaced = True
        self._spawn()

    def _spawn(self) -> None:
        with self._lock:
            self._threads += 1
            number = self._threads
        threading.Thread(target=self._work, name=f"{self.name}-{number}", daemon=True).start()

    def _work(self) -> None:
        queue, loop = self._queue, self._loop
        while True:
            call = queue.get()
            if call is _STOP:
                break
            if not call.future.done():  # not timed out while queued
                try:
                    result, error = call.function(call.argument), None
                except BaseException as exc:  # handed to the awaiting request
                    result, error = None, exc
                try:
                    loop.call_soon_threadsafe(_settle, call.future, result, error)
                except RuntimeError:  # the loop closed meanwhile (shutdown)
                    pass
            with self._lock:
                if call.replaced:  # a spare took this thread's place
                    break
        with self._lock:
            self._threads -= 1


class _Call:
    __slots__ = ("future", "function", "argument", "replaced")

    def __init__(self, future: asyncio.Future, function: Callable[[Any], Any], argument: Any):
        self.future, self.function, self.argument, self.replaced = future, function, argument, False


def _expire(future: asyncio.Future) -> None:
    if not future.done():
        future.set_exception(TimeoutError())


def _settle(future: asyncio.Future, result: Any, error: BaseException | None) -> None:
    if future.done():  # timed out or cancelled (the client left): nobody waits for it
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
