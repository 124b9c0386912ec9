"""Progress of a long offline query: a training set over 100M rows runs for minutes.

``watch`` polls DuckDB's own estimate (``query_progress``, 0..100) from a daemon thread
while the query runs, and reports it once the query has run ``after`` seconds, then every
``every`` seconds: quick queries report nothing. The default report logs to the
``featurestore.offline`` logger and, when stderr is a terminal, updates one line there.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import duckdb

__all__ = ["Progress", "report_progress", "watch"]

log = logging.getLogger("featurestore.offline")

#: Called with (what, percent done); what names the work ("view 'driver_stats'").
Progress = Callable[[str, float], None]


def report_progress(what: str, percent: float) -> None:
    log.info("%s: %.0f%% done", what, percent)
    if sys.stderr.isatty():
        sys.stderr.write(f"\r{what}: {percent:5.1f}% done")
        sys.stderr.flush()


@contextmanager
def watch(con: duckdb.DuckDBPyConnection, what: str, report: Progress | None,
          after: float = 3.0, every: float = 1.0) -> Iterator[None]:
    """Report ``con``'s query progress while the body runs (nothing when ``report`` is None)."""
    if report is None:
        yield
        return
    done = threading.Event()

    def poll() -> None:
        if done.wait(after):
            return
        while not done.is_set():
            percent = con.query_progress()
            if percent >= 0:  # -1: no query running (yet, or any more)
                report(what, percent)
            done.wait(every)

    thread = threading.Thread(target=poll, name="featurestore-progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
