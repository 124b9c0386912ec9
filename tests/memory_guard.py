"""A test process whose memory runs away stops with the test's name and every thread's
stack, instead of being killed by the kernel once the machine is out of memory (which
takes the evidence with it, and may take the machine's other processes first).

The suite peaks near 1 GiB; past ``LIMIT_BYTES`` (``FEATURESTORE_TEST_MEMORY_LIMIT_GIB``,
default 8) a watcher thread notes what the process is running and interrupts the main
thread, as Ctrl-C would: pytest ends the run, and the conftest prints ``report()`` in
the run's summary (what a test prints meanwhile is captured, and lost with the run).
"""

from __future__ import annotations

import _thread
import os
import sys
import threading
import traceback

__all__ = ["LIMIT_BYTES", "report", "resident_bytes", "running", "start"]

LIMIT_BYTES = int(float(os.environ.get("FEATURESTORE_TEST_MEMORY_LIMIT_GIB", "8")) * 2**30)
PERIOD = 1.0

_current = {"test": "(between tests)"}
_reports: list[str] = []


def running(nodeid: str) -> None:
    """Note the test now running, for the report."""
    _current["test"] = nodeid


def report() -> str | None:
    """What the guard saw when it interrupted this process (None: it has not)."""
    return _reports[0] if _reports else None


def resident_bytes() -> int | None:
    """This process's resident memory, from /proc (None where there is none)."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def start(limit: int = LIMIT_BYTES, period: float = PERIOD) -> threading.Event | None:
    """Watch this process's memory on a daemon thread until the event returned is set
    (None: nothing to watch here)."""
    if resident_bytes() is None:
        return None
    stop = threading.Event()

    def watch() -> None:
        while not stop.wait(period):
            used = resident_bytes() or 0
            if used > limit:
                _reports.append(_describe(used, limit))
                _thread.interrupt_main()
                return

    threading.Thread(target=watch, name="memory-guard", daemon=True).start()
    return stop


def _describe(used: int, limit: int) -> str:
    names = {thread.ident: thread.name for thread in threading.enumerate()}
    lines = [f"The test process held {used / 2**30:.1f} GiB, past the suite's limit of {limit / 2**30:.1f} GiB"
             f" (FEATURESTORE_TEST_MEMORY_LIMIT_GIB), in {_current['test']}. Every thread's stack:"]
    for ident, frame in sys._current_frames().items():
        if ident != threading.get_ident():
            lines.append(f"\nthread {names.get(ident, ident)}:\n" + "".join(traceback.format_stack(frame)).rstrip())
    return "\n".join(lines)
