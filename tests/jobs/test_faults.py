"""The issue's faults, with real processes: a backfill killed mid-chunk and rerun, and two
scheduler processes started at once. (A source failing for one chunk is in
test_backfill.py: retried, reported, the other chunks succeed.)"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter

import pytest

from featurestore.jobs import backfill
from featurestore.jobs.locks import view_lock

from .conftest import NOW, VIEW, days, make_repo, online_state, open_store

START = NOW - days(7)
SETTINGS = "scheduler:\n  lock_ttl: 5s\n  lock_wait: 60s\n"

# Backfills VIEW over [START, NOW] by day, but inside the chunk starting at argv[3] it
# writes the first two entities' rows, touches the marker file and hangs there.
HALTING_BACKFILL = textwrap.dedent("""
    import sys, time
    from datetime import datetime
    from featurestore import FeatureStore
    from featurestore.config import load_config
    from featurestore.jobs import backfill
    from featurestore.offline.duckdb import DuckDBEngine

    repo, marker, halt_at, start, end = sys.argv[1:6]
    env = {"FEATURESTORE_REDIS_URL": sys.argv[6]} if len(sys.argv) > 6 else {}
    config = load_config(repo, env=env)
    halt_at = datetime.fromisoformat(halt_at)

    class HaltMidChunk:
        def __init__(self, engine):
            self.engine = engine

        def __getattr__(self, name):
            return getattr(self.engine, name)

        def latest_rows(self, view, start, end, batch_rows=100_000):
            rows = self.engine.latest_rows(view, start, end, batch_rows).read_all()
            if start != halt_at:
                return iter(rows.to_batches())

            def halves():
                yield from rows.slice(0, 2).to_batches()
                open(marker, "w").close()  # the first batch is written; the test kills us now
                time.sleep(600)
                yield from rows.slice(2).to_batches()

            return halves()

    store = FeatureStore(config=config, offline=HaltMidChunk(DuckDBEngine(str(config.offline_store))))
    backfill(store, "driver_hourly_stats", start, end, "1d")
""")


def _env() -> dict:
    return {k: v for k, v in os.environ.items() if not k.startswith("FEATURESTORE_")}


def _wait_for(path, proc, what):
    deadline = time.monotonic() + 120
    while not path.exists():
        assert proc.poll() is None, f"{what} exited early with {proc.returncode}"
        assert time.monotonic() < deadline, f"{what} never got there"
        time.sleep(0.05)


def _offline_files(repo) -> dict:
    """Every data file but the registry and the SQLite online store, with its digest."""
    skip = ("registry.db", "online.db")
    return {str(p.relative_to(repo)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted((repo / "data").rglob("*")) if p.is_file() and not p.name.startswith(skip)}


@pytest.mark.parametrize("online", ["sqlite", "redis"])
def test_a_backfill_killed_mid_chunk_and_rerun_equals_a_clean_run(tmp_path, online, request):
    env = {"FEATURESTORE_REDIS_URL": request.getfixturevalue("redis_url")} if online == "redis" else {}
    repo = make_repo(tmp_path / "repo", scheduler_yaml=SETTINGS)
    clean_repo = make_repo(tmp_path / "clean", scheduler_yaml=SETTINGS)
    last_chunk = NOW - days(1)  # its rows are the final values, so a half-done chunk shows
    with open_store(clean_repo, env) as clean:
        clean.apply()
        clean_report = backfill(clean, VIEW, START, NOW, "1d")
        assert clean_report.ok
        clean_state, clean_mark = online_state(clean), clean.materializer.watermark(VIEW)

    with open_store(repo, env) as store:
        store.apply()
        offline_before = _offline_files(repo)
        marker = tmp_path / "halted"
        proc = subprocess.Popen(
            [sys.executable, "-c", HALTING_BACKFILL, str(repo), str(marker), last_chunk.isoformat(),
             START.isoformat(), NOW.isoformat(), *env.values()],
            env=_env(),
        )
        try:
            _wait_for(marker, proc, "the backfill")
        finally:
            proc.kill()
            proc.wait()

        halted = online_state(store)
        assert halted != clean_state  # two entities have their final rows, three do not yet
        assert sum(halted[d] == clean_state[d] for d in clean_state) == 2
        [running] = store.registry.jobs.list(store.project, statuses=["running"])
        assert (running.window_start, running.window_end) == (last_chunk, NOW)

        # The rerun takes over the dead holder's lock (same host, pid gone), closes its
        # record and runs only the chunk it did not finish.
        report = backfill(store, VIEW, START, NOW, "1d")
        assert report.ok and (report.count("skipped"), report.count("succeeded")) == (6, 1)
        assert online_state(store) == clean_state
        assert store.materializer.watermark(VIEW) == clean_mark == NOW
        assert _offline_files(repo) == offline_before

        records = store.registry.jobs.list(store.project, target=VIEW, limit=None)
        succeeded = Counter((r.window_start, r.window_end) for r in records if r.status == "succeeded")
        assert set(succeeded.values()) == {1} and len(succeeded) == 7  # each chunk done once
        assert [r.id for r in records if r.status == "interrupted"] == [running.id]
        assert len(records) == 8


SCHEDULED_EVERY_SECOND = ("scheduler:\n  poll: 0.2s\n  lock_ttl: 10s\n  shutdown_grace: 30s\n"
                          "  views:\n    driver_hourly_stats: 1s\n    driver_hourly_stats_fresh: null\n")


def test_two_scheduler_processes_started_at_once_run_each_window_once(tmp_path):
    repo = make_repo(tmp_path / "repo", scheduler_yaml=SCHEDULED_EVERY_SECOND)
    with open_store(repo) as store:
        store.apply()
        command = [sys.executable, "-c", "import sys; from featurestore.cli.main import main; main()",
                   "--repo", str(repo), "scheduler"]
        procs = [subprocess.Popen(command, env=_env(), stderr=subprocess.PIPE, text=True) for _ in range(2)]
        try:
            deadline = time.monotonic() + 120
            while len(store.registry.jobs.list(store.project, statuses=["succeeded"])) < 4:
                assert all(p.poll() is None for p in procs), "a scheduler exited"
                assert time.monotonic() < deadline, "the schedulers ran fewer than 4 windows in 2 minutes"
                time.sleep(0.1)
        finally:
            for p in procs:
                p.send_signal(signal.SIGTERM)
            logs = [p.communicate(timeout=120)[1] for p in procs]
        assert [p.returncode for p in procs] == [0, 0], logs
        assert all("scheduler stopped" in log for log in logs), logs

        records = store.registry.jobs.list(store.project, limit=None)
        assert {r.trigger for r in records} == {"scheduled"}
        assert {r.status for r in records} == {"succeeded"}  # none left running or interrupted
        ends = Counter(r.window_end for r in records)
        assert set(ends.values()) == {1}, "a window ran twice"
        # Consecutive: each window starts where the previous one ended.
        ordered = sorted(records, key=lambda r: r.window_end)
        assert all(a.window_end == b.window_start for a, b in zip(ordered, ordered[1:]))
        assert store.locks.holder(view_lock(VIEW)) is None
