"""``ChildProcess``: a process of its own, spoken to over a pipe, one exchange at a time.

The parent sends picklable messages (or raw bytes) and reads answers, each read within a
deadline when one is given. A child that died (its end of the pipe closed) or missed a
deadline (it is killed: a hung call cannot be interrupted otherwise) raises
``ChildGone``, and the next exchange starts a new one. Children are started with
``spawn``, so the parent's threads are not copied into them, and are daemons: they exit
with the parent.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import select
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

__all__ = ["AS_REQUESTS_TURN", "ChildGone", "ChildProcess", "NICENESS", "messages", "run_as_requests",
           "run_behind_requests", "wait_as_requests"]

#: Where SCHED_IDLE is missing: how much lower than the worker's a helper process's
#: priority is (10: about a tenth of a core's time when it competes with the worker for one).
NICENESS = 10
#: Seconds between the puts of a helper back at the worker's priority while someone waits
#: on it (``wait_as_requests``).
AS_REQUESTS_TURN = 0.5


class ChildGone(Exception):
    """The child died, or missed its deadline and was killed (``late``)."""

    def __init__(self, message: str, *, late: bool = False):
        super().__init__(message)
        self.late = late


class ChildProcess:
    """``target(conn, *args)`` run in a child process, started on first use. Not
    thread-safe: the owner serializes its exchanges."""

    def __init__(self, target: Callable[..., None], args: tuple = (), name: str = "featurestore-child"):
        """``target`` and ``args``: picklable (a module-level function)."""
        self._target, self._args, self._name = target, args, name
        self._process = None
        self._conn = None
        self._answers = None  # a select.poll on the pipe: a wait with a deadline, without a selector per wait

    @property
    def pid(self) -> int | None:
        """The running child's process id (None: none started)."""
        process = self._process  # read once: another thread may stop it meanwhile
        return process.pid if process is not None else None

    def start(self) -> None:
        """Start the child now unless one runs: its start-up (imports, opening what it
        opens) then overlaps what the parent does before its first message."""
        if self._process is None or not self._process.is_alive():
            self.stop()
            self._start()

    def send(self, message: Any) -> None:
        """Send ``message`` (pickled), starting the child first when none is running."""
        self._exchange(lambda: self._conn.send(message))

    def send_bytes(self, data: Any) -> None:
        self._exchange(lambda: self._conn.send_bytes(data))

    def receive(self, seconds: float | None = None) -> Any:
        """The child's next message; ``ChildGone`` when it died, or when none came within
        ``seconds`` (then it is killed)."""
        if self._conn is None:
            raise ChildGone(f"{self._name} is not running")
        if seconds is not None and not self._answers.poll(math.ceil(seconds * 1000)):
            self.stop()
            raise ChildGone(f"{self._name} did not answer within {seconds:g} s and was stopped", late=True)
        return self._exchange(self._conn.recv, start=False)

    def close(self) -> None:
        """Ask the child to exit (``None``), wait a little for it, and kill it if it does not."""
        if self._conn is not None:
            try:
                self._conn.send(None)
            except OSError:
                pass
        self.stop(wait=5.0)

    def stop(self, wait: float = 0.0) -> None:
        """End the child now (after ``wait`` seconds for it to exit by itself)."""
        if self._conn is not None:
            self._conn.close()
        if self._process is not None and self._process.pid is not None:  # not one that failed to start
            self._process.join(wait)
            if self._process.is_alive():
                self._process.kill()
                self._process.join(1.0)
        self._process = self._conn = self._answers = None

    def _exchange(self, step: Callable[[], Any], start: bool = True) -> Any:
        if start:
            self.start()
        try:
            return step()
        except (EOFError, OSError) as exc:
            self.stop()
            raise ChildGone(f"{self._name} died ({type(exc).__name__})") from None

    def _start(self) -> None:
        context = multiprocessing.get_context("spawn")
        self._conn, theirs = context.Pipe()
        self._process = context.Process(target=self._target, args=(theirs, *self._args), daemon=True,
                                        name=self._name)
        self._process.start()
        theirs.close()
        self._answers = select.poll()
        self._answers.register(self._conn.fileno(), select.POLLIN)


def messages(conn) -> Iterator[Any]:
    """The child's side: the parent's messages, until ``None`` or its end of the pipe closes."""
    while True:
        try:
            message = conn.recv()
        except EOFError:
            return
        if message is None:
            return
        yield message


def run_behind_requests(pid: int | None = None) -> str:
    """Make the calling process (and the processes it starts) give way to the server's
    workers: a helper's work (the serving log's Arrow and Parquet, shadow calls) may wait
    under load, a request may not. Linux's SCHED_IDLE does that at once: a worker that
    wakes takes the core from it straight away, where under a lower nice value alone it
    may wait out the helper's time slice (1-3 ms: bench/predict.py measured c1 p99 about
    0.7 ms worse than with SCHED_IDLE). Elsewhere ``NICENESS`` lower. Returns the policy
    taken: "idle", "nice" or "none" (not allowed: at the worker's priority).

    With ``pid``: put that process, its descendants and every thread back behind the
    requests after ``run_as_requests`` (no one waits on it any more). Where SCHED_IDLE is
    missing, ``run_as_requests`` left it alone, and so does this ("none")."""
    if pid is not None:
        if not hasattr(os, "SCHED_IDLE"):
            return "none"
        _reschedule(pid, os.SCHED_OTHER, os.SCHED_IDLE)
        return "idle"
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError):
        pass
    else:  # and the threads started before (a library's, while it was imported: jemalloc's)
        _reschedule(os.getpid(), os.SCHED_OTHER, os.SCHED_IDLE)
        return "idle"
    try:
        os.nice(NICENESS)
        return "nice"
    except OSError:
        return "none"


def run_as_requests(pid: int) -> None:
    """Put process ``pid`` and its descendants, every thread, back at the worker's
    priority (Linux: SCHED_OTHER): a stopping worker serves no more requests, and on cores
    other processes keep busy a SCHED_IDLE helper would not finish its work (writing the
    rows it holds) before the worker gives up waiting for it. Best effort: a process that
    exited meanwhile, or a system without SCHED_IDLE, is left alone."""
    if hasattr(os, "SCHED_IDLE"):
        _reschedule(pid, os.SCHED_IDLE, os.SCHED_OTHER)


def wait_as_requests(pid: Callable[[], int | None], done: Callable[[float], bool], seconds: float | None) -> bool:
    """Wait at most ``seconds`` (None: as long as it takes) for ``done(turn)`` (waits at most
    ``turn`` seconds; True: finished) with the helper process ``pid()`` at the worker's
    priority (``run_as_requests``); False when ``seconds`` passed first. Again each
    ``AS_REQUESTS_TURN``: a process started meanwhile puts itself behind the requests once
    its imports are done."""
    deadline = None if seconds is None else time.monotonic() + seconds
    while True:
        current = pid()
        if current is not None:
            run_as_requests(current)
        left = AS_REQUESTS_TURN if deadline is None else deadline - time.monotonic()
        if done(max(0.0, min(AS_REQUESTS_TURN, left))):
            return True
        if deadline is not None and time.monotonic() >= deadline:
            return False


def _reschedule(pid: int, old: int, new: int) -> None:
    """Every thread of process ``pid`` and its descendants under policy ``old`` to ``new``."""
    todo = [pid]
    while todo:
        tasks = Path(f"/proc/{todo.pop()}/task")
        try:
            for task in tasks.iterdir():
                if os.sched_getscheduler(int(task.name)) == old:
                    os.sched_setscheduler(int(task.name), new, os.sched_param(0))
                todo += [int(child) for child in (task / "children").read_text().split()]
        except (OSError, ValueError):  # gone meanwhile, or not ours to change
            continue
