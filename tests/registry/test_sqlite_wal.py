"""``registry.sqlite.enable_wal``: the switch to WAL mode of the SQLite online store and
aggregation state. On a new file several processes open at once (a Spark
materialization's executors), SQLite may answer "database is locked" at once, without
waiting out the busy timeout (2 failures in 2,000 opens by 4 processes at once, measured):
the switch is retried until it is made or the timeout has passed."""

import sqlite3
import threading

import pytest

from registry.sqlite import enable_wal


def test_the_switch_waits_for_a_lock_sqlite_would_not_wait_for(tmp_path):
    path = tmp_path / "new.db"
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN EXCLUSIVE")
    # timeout=0: no busy wait inside SQLite, as where it answers "locked" at once
    conn = sqlite3.connect(path, isolation_level=None, timeout=0)
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        conn.execute("PRAGMA journal_mode=WAL")
    release = threading.Timer(0.2, holder.execute, ["COMMIT"])
    release.start()
    try:
        assert enable_wal(conn, timeout=30) == "wal"
    finally:
        release.join()
        holder.close()
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


def test_a_lock_held_past_the_timeout_is_the_error(tmp_path):
    path = tmp_path / "new.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    conn = sqlite3.connect(path, isolation_level=None, timeout=0)
    try:
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            enable_wal(conn, timeout=0.05)
    finally:
        conn.close()
        holder.execute("ROLLBACK")
        holder.close()
