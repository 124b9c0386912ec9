"""What only the SQLite store has: its table, WAL, threads, processes and locks."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
import threading

import pyarrow as pa
import pytest

from featurestore.errors import StoreUnavailableError
from featurestore.online.base import EVENT_TIMESTAMP, OnlineView
from featurestore.online.entity_keys import entity_key_encoder
from featurestore.online.records import decode_record, encode_record
from featurestore.online.values import value_encoder
from featurestore.online.sqlite import SqliteOnlineStore
from featurestore.types import Int64, String

T0 = 1_700_000_000_000_000
VIEW = OnlineView("stats", ("id",), ("n", "s"), (Int64, String))


def batch(ids, ts: int, n: int = 0) -> pa.Table:
    ids = list(ids)
    return pa.table({"id": ids, "n": [n] * len(ids), "s": [None] * len(ids),
                     EVENT_TIMESTAMP: pa.array([ts] * len(ids), pa.timestamp("us", tz="UTC"))})


def test_table_layout_and_wal(tmp_path):
    path = tmp_path / "nested" / "online.db"
    store = SqliteOnlineStore(path, "proj")
    store.write_batch(VIEW, batch([3], T0, n=9))
    store.close()
    raw = sqlite3.connect(path)
    assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    [row] = raw.execute("SELECT project, view, entity_key, event_ts, feature_values FROM online_features").fetchall()
    assert row == ("proj", "stats", entity_key_encoder(("id",))((3,)), T0,
                   encode_record([b"n", b"s"], [value_encoder(Int64)(9), None]))
    assert decode_record(row[4]) == {"n": value_encoder(Int64)(9), "s": None}
    raw.close()


def test_memory_database_is_shared_by_threads_of_one_store():
    store = SqliteOnlineStore(":memory:", "p")
    store.write_batch(VIEW, batch([1], T0, n=5))
    seen = []
    thread = threading.Thread(target=lambda: seen.append(store.read([(VIEW, ("n",), [(1,)])])))
    thread.start()
    thread.join()
    assert seen == [[[(T0, (5,))]]]
    store.close()


def test_threads_read_and_write_concurrently(tmp_path):
    store = SqliteOnlineStore(tmp_path / "online.db", "p")
    errors = []

    def work(worker: int) -> None:
        try:
            for round_ in range(20):
                store.write_batch(VIEW, batch(range(50), T0 + round_ * 10 + worker, n=round_ * 10 + worker))
                assert all(row is not None for row in store.read([(VIEW, ("n",), [(i,) for i in range(50)])])[0])
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert store.read([(VIEW, ("n",), [(0,), (49,)])]) == [[(T0 + 193, (193,))] * 2]
    store.close()


_WRITER = textwrap.dedent("""
    import sys
    import pyarrow as pa
    from featurestore.online.base import EVENT_TIMESTAMP, OnlineView
    from featurestore.online.sqlite import SqliteOnlineStore
    from featurestore.types import Int64, String

    path, worker = sys.argv[1], int(sys.argv[2])
    view = OnlineView("stats", ("id",), ("n", "s"), (Int64, String))
    store = SqliteOnlineStore(path, "p", batch_size=100)
    for round_ in range(10):
        ts = 1_700_000_000_000_000 + round_ * 10 + worker
        store.write_batch(view, pa.table({
            "id": list(range(300)), "n": [round_ * 10 + worker] * 300, "s": [str(worker)] * 300,
            EVENT_TIMESTAMP: pa.array([ts] * 300, pa.timestamp("us", tz="UTC"))}))
    store.close()
""")


def test_several_processes_write_one_file_and_the_newest_wins(tmp_path):
    path = tmp_path / "online.db"
    SqliteOnlineStore(path, "p").health()  # create the file first, as `featurestore apply` would
    procs = [subprocess.Popen([sys.executable, "-c", _WRITER, str(path), str(w)], stderr=subprocess.PIPE)
             for w in range(3)]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err.decode()
    store = SqliteOnlineStore(path, "p")
    assert store.read([(VIEW, ("n", "s"), [(i,) for i in range(300)])]) == [[(T0 + 92, (92, "2"))] * 300]
    store.close()


def test_a_write_lock_held_too_long_is_unavailable_not_a_hang(tmp_path):
    path = tmp_path / "online.db"
    store = SqliteOnlineStore(path, "p", timeout=0.05)
    store.write_batch(VIEW, batch([1], T0, n=1))
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StoreUnavailableError, match="write lock"):
            store.write_batch(VIEW, batch([1], T0 + 1, n=2))
        assert store.read([(VIEW, ("n",), [(1,)])]) == [[(T0, (1,))]]  # WAL: readers do not wait
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    store.write_batch(VIEW, batch([1], T0 + 1, n=2))  # and the store still works afterwards
    assert store.read([(VIEW, ("n",), [(1,)])]) == [[(T0 + 1, (2,))]]
    store.close()


def test_an_unusable_path_is_unavailable_and_named(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    store = SqliteOnlineStore(blocker / "online.db", "p")
    with pytest.raises(StoreUnavailableError, match="a-file"):
        store.health()
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreUnavailableError, match="garbage.db"):
        SqliteOnlineStore(garbage, "p").health()


def test_close_then_use_reopens(tmp_path):
    store = SqliteOnlineStore(tmp_path / "online.db", "p")
    store.write_batch(VIEW, batch([1], T0, n=1))
    store.close()
    store.close()
    assert store.read([(VIEW, ("n",), [(1,)])]) == [[(T0, (1,))]]
    store.close()


def test_reads_of_more_keys_than_one_query_holds(tmp_path):
    store = SqliteOnlineStore(tmp_path / "online.db", "p")
    store.write_batch(VIEW, batch(range(1200), T0, n=4))
    rows = store.read([(VIEW, ("n",), [(i,) for i in range(1300)])])[0]
    assert rows[:1200] == [(T0, (4,))] * 1200 and rows[1200:] == [None] * 100
    store.close()
