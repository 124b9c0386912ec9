"""The entity-driven filters (keys, event-time window) never change an answer.

The window is ``[first T - ttl, last T]`` over the entity rows, so the rows that decide an
answer sit exactly on its edges here; keys go through the dense-id path (strings, wide
integers, several columns, sparse integers) and the statistics path (dense integers)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from featurestore.offline.base import SourceTable, ViewRequest
from featurestore.offline.duckdb import DuckDBEngine

UTC = timezone.utc
TS = pa.timestamp("us", tz="UTC")
T0 = datetime(2024, 5, 1, 12, tzinfo=UTC)
US = timedelta(microseconds=1)


def join(tmp_path, rows: dict, entities: dict, *, ttl=None, known_at=False, keys=("k",), created="created"):
    path = tmp_path / "src.parquet"
    pq.write_table(pa.table(rows), path)
    request = ViewRequest("v", SourceTable((str(path),), "ts", created), keys, ("x",), ("x",), ttl=ttl)
    table = pa.table(entities)
    out = DuckDBEngine().point_in_time_join(table, "ts", [request], known_at_timestamp=known_at).read_all()
    assert out.select(table.column_names).equals(table)  # entity rows untouched, in order
    return out.column("x").to_pylist()


KEYS = {
    "int": (pa.int64(), [1, 2, 3]),
    "wide int": (pa.int64(), [1, 2**40, -(2**40)]),
    "string": (pa.string(), ["a", "bb", "ccc"]),
}


@pytest.mark.parametrize("kind", KEYS)
@pytest.mark.parametrize("ttl", [None, timedelta(0), timedelta(hours=1)])
def test_rows_on_the_window_edges_are_kept(tmp_path, kind, ttl):
    dtype, (a, b, absent) = KEYS[kind]
    hour = timedelta(hours=1)
    rows = {  # key a: one row exactly at T - ttl, one just before; key b: one at T, one just after
        "k": pa.array([a, a, b, b], dtype),
        "ts": pa.array([T0 - hour, T0 - hour - US, T0 + hour, T0 + hour + US], TS),
        "created": pa.array([T0 - 2 * hour] * 4, TS),
        "x": [1, 2, 3, 4],
    }
    entities = {  # first T is T0 (so first T - ttl is T0 - 1h), last T is T0 + 1h
        "k": pa.array([a, b, absent, a, None], dtype),
        "ts": pa.array([T0, T0 + hour, T0 + hour, T0, T0], TS),
    }
    got = join(tmp_path, rows, entities, ttl=ttl)
    # with a ttl of 1h the row 1us before T - ttl is too old; without one it is never picked
    # since the row at T - ttl is newer
    assert got == [1, 3, None, 1, None]


def test_no_ttl_reaches_rows_long_before_the_first_entity_time(tmp_path):
    rows = {"k": [1, 2], "ts": pa.array([T0 - timedelta(days=3000), T0], TS), "created": pa.array([T0, T0], TS),
            "x": [10, 20]}
    for ttl in (None, timedelta(0)):
        assert join(tmp_path, rows, {"k": [1, 2], "ts": pa.array([T0, T0], TS)}, ttl=ttl) == [10, 20]
    assert join(tmp_path, rows, {"k": [1, 2], "ts": pa.array([T0, T0], TS)}, ttl=timedelta(days=1)) == [None, 20]


def test_dense_and_sparse_integer_keys_agree(tmp_path):
    """Many keys asked for (statistics path) and few (key ids), duplicates and absent keys."""
    n = 200
    rows = {"k": list(range(n)) * 2, "ts": pa.array([T0] * n + [T0 + timedelta(hours=1)] * n, TS),
            "created": pa.array([T0] * (2 * n), TS), "x": list(range(2 * n))}
    dense = {"k": list(range(n)) + [5, 5, 10**6], "ts": pa.array([T0 + timedelta(hours=2)] * (n + 3), TS)}
    assert join(tmp_path, rows, dense) == [n + i for i in range(n)] + [n + 5, n + 5, None]
    sparse = {"k": [7, 7, 10**6, 3], "ts": pa.array([T0, T0 + timedelta(hours=1), T0, T0 - US], TS)}
    assert join(tmp_path, rows, sparse) == [7, n + 7, None, None]


def test_created_breaks_ties_and_known_at_skips_rows_not_yet_written(tmp_path):
    hour = timedelta(hours=1)
    rows = {  # two rows at the same event time; the correction (x=2) was written an hour later
        "k": ["a", "a", "a"],
        "ts": pa.array([T0, T0, T0 - hour], TS),
        "created": pa.array([T0, T0 + hour, T0 - hour], TS),
        "x": [1, 2, 0],
    }
    entities = {"k": ["a", "a", "a"], "ts": pa.array([T0, T0 + hour, T0 - US], TS)}
    assert join(tmp_path, rows, entities) == [2, 2, 0]
    assert join(tmp_path, rows, entities, known_at=True) == [1, 2, 0]
    # the rows known later are looked for within the ttl too
    later = {"k": ["a", "a"], "ts": pa.array([T0 + timedelta(minutes=10)] * 2, TS)}
    assert join(tmp_path, rows, later, known_at=True, ttl=timedelta(minutes=30)) == [1, 1]
    assert join(tmp_path, rows, later, known_at=True, ttl=timedelta(minutes=5)) == [None, None]
    assert join(tmp_path, rows, entities, known_at=True, ttl=timedelta(minutes=30)) == [1, None, None]


def test_several_key_columns_and_null_entity_times(tmp_path):
    rows = {"a": [1, 1, 2], "b": ["x", "y", "x"], "ts": pa.array([T0] * 3, TS), "created": pa.array([T0] * 3, TS),
            "x": [11, 12, 21]}
    entities = {"a": [1, 1, 2, 2, 1], "b": ["y", "x", "x", "y", "x"],
                "ts": pa.array([T0, T0, T0, T0, None], TS)}
    for known_at in (False, True):
        assert join(tmp_path, rows, entities, keys=("a", "b"), known_at=known_at) == [12, 11, 21, None, None]


def test_only_null_entity_times_read_nothing(tmp_path):
    rows = {"k": [1], "ts": pa.array([T0], TS), "created": pa.array([T0], TS), "x": [1]}
    assert join(tmp_path, rows, {"k": [1, 1], "ts": pa.array([None, None], TS)}) == [None, None]


def test_wide_keys_sharing_their_low_bits_stay_apart(tmp_path):
    """Keys 2**32 apart share the low 32 bits that a dense wide key joins on; the high part
    folded into the time keeps each key's rows to itself, before and after in time."""
    hour, low = timedelta(hours=1), 5
    a, b, c, d, absent = low, low + 2**32, low + 2 * 2**32, low - 2**40, low + 3 * 2**32
    rows = {
        "k": [a, b, c, d],
        "ts": pa.array([T0, T0 - 3 * hour, T0 + hour / 2, T0 - hour / 2], TS),
        "created": pa.array([T0 - 4 * hour] * 4, TS),
        "x": [1, 2, 3, 4],
    }
    entities = {
        "k": [a, b, c, c, d, absent, b],
        "ts": pa.array([T0, T0, T0, T0 + hour, T0, T0, T0 - 2.5 * hour], TS),
    }
    # b's row is older than the ttl at T0 (a's newer row has the same low bits); c's comes
    # after T0; the key above every source key matches nothing
    assert join(tmp_path, rows, entities, ttl=hour) == [1, None, None, 3, 4, None, 2]
    assert join(tmp_path, rows, entities) == [1, 2, None, 3, 4, None, 2]


def test_a_wide_key_named_with_braces(tmp_path):
    rows = {"id{x}": [5, 5 + 2**32], "ts": pa.array([T0, T0 - timedelta(hours=3)], TS),
            "created": pa.array([T0] * 2, TS), "x": [1, 2]}
    entities = {"id{x}": [5, 5 + 2**32], "ts": pa.array([T0] * 2, TS)}
    assert join(tmp_path, rows, entities, ttl=timedelta(hours=1), keys=("id{x}",)) == [1, None]
