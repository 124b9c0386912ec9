"""Online == offline: the value served online for (entity, T) is what a training set
gets for it, at the ttl edge for any ttl a ``timedelta`` can hold, and among rows tied on
event time.

For an entity row (key, T) ``get_historical_features`` takes the row with
``T - ttl <= event <= T``; ``get_online_features`` with the clock at T, after a
materialization up to T, must serve exactly the same value. Events sit a few microseconds
either side of ``T - ttl`` and of T, and ttls range from one microsecond to centuries (whose
float seconds no longer hold every microsecond), so any float step on either side shows.
"""

from __future__ import annotations

import itertools
import json
import textwrap
import uuid
from datetime import datetime, timedelta, timezone

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from featurestore import FeatureStore
from featurestore.clock import to_micros
from featurestore.config import load_config
from featurestore.offline.files import write_parquet_atomic

from .conftest import NOW

DEFINITIONS = '''
import json
from datetime import timedelta
from pathlib import Path

from featurestore import Entity, FeatureView, Field, FileSource
from featurestore.types import Int64

# The ttl comes from a data file: rewriting this module between examples could leave a
# stale bytecode cache behind (same size, same second).
_TTL_US = json.loads((Path(__file__).parent / "ttl.json").read_text())

driver = Entity(name="driver", join_keys=["driver_id"])
stats = FeatureView(
    name="stats",
    entities=[driver],
    ttl=None if _TTL_US is None else timedelta(microseconds=_TTL_US),
    schema=[Field("value", Int64)],
    source=FileSource(name="stats_source", path="data/stats.parquet", timestamp_field="event_timestamp"),
)
'''

SCHEMA = pa.schema([("driver_id", pa.int64()), ("event_timestamp", pa.timestamp("us", tz="UTC")),
                    ("value", pa.int64())])
EDGE = range(-2, 3)  # microseconds either side of an edge

ttls = st.one_of(
    st.integers(1, 3_000_000).map(lambda us: timedelta(microseconds=us)),  # sub-second and around it
    st.timedeltas(min_value=timedelta(microseconds=1), max_value=timedelta(days=3650)),
    st.timedeltas(min_value=timedelta(days=3650), max_value=timedelta(days=365 * 1500)),
    st.none(),
)
moments = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2040, 1, 1))


class Clock:
    def __init__(self):
        self.us = 0

    def __call__(self) -> float:
        return self.us / 1_000_000  # a float reading, like time.time()


@pytest.fixture(params=["sqlite", "redis"])
def parity(request, tmp_path, offline_store_section):
    if request.param == "redis":
        project = request.getfixturevalue("redis_project")
        online = f"  type: redis\n  connection_string: {request.getfixturevalue('redis_url')}\n"
    else:
        project = f"test-{uuid.uuid4().hex[:12]}"
        online = "  type: sqlite\n  path: data/online.db\n"
    repo = tmp_path / "repo"
    (repo / "data").mkdir(parents=True)
    (repo / "featurestore.yaml").write_text(
        f"project: {project}\nregistry: data/registry.db\n{offline_store_section}online_store:\n{online}")
    (repo / "features.py").write_text(textwrap.dedent(DEFINITIONS))
    (repo / "ttl.json").write_text("null")
    clock = Clock()
    with FeatureStore(config=load_config(repo, env={}), clock=clock) as store:
        yield repo, store, clock, itertools.count(1)


#: Examples per offline engine: on Spark, a materialization (written from its executors)
#: and a training set cost about a second each in local mode.
EXAMPLES = {"duckdb": 25, "spark": 3}


def test_online_value_equals_historical_value_at_the_ttl_edge(parity, engine_name):
    @settings(max_examples=EXAMPLES[engine_name], deadline=None, database=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(ttl=ttls, moment=moments)
    def check(ttl, moment):
        check_ttl_edge(parity, ttl, moment)

    check()


def check_ttl_edge(parity, ttl, moment):
    repo, store, clock, ids = parity
    t = moment.replace(tzinfo=timezone.utc)
    edges = [t + timedelta(microseconds=d) for d in EDGE]
    if ttl is not None:
        edges += [t - ttl + timedelta(microseconds=d) for d in EDGE]
    rows = [{"driver_id": next(ids), "event_timestamp": at, "value": i} for i, at in enumerate(edges)]
    (repo / "ttl.json").write_text(json.dumps(None if ttl is None else ttl // timedelta(microseconds=1)))
    write_parquet_atomic(pa.Table.from_pylist(rows, schema=SCHEMA), repo / "data" / "stats.parquet")
    store.apply()
    assert store.get_feature_view("stats").ttl == ttl  # the registry keeps it exactly

    clock.us = to_micros(t)
    store.materialize(None, t, views=["stats"])
    keys = [r["driver_id"] for r in rows]
    online = store.get_online_features(["stats:value"], {"driver_id": keys}).to_dict()["value"]
    entities = pa.table({"driver_id": pa.array(keys, pa.int64()),
                         "event_timestamp": pa.array([t] * len(keys), pa.timestamp("us", tz="UTC"))})
    offline = store.get_historical_features(entities, ["stats:value"]).to_arrow().column("value").to_pylist()

    expected = [r["value"] if (ttl is None or t - ttl <= r["event_timestamp"]) and r["event_timestamp"] <= t
                else None for r in rows]
    assert offline == expected
    assert online == expected


# Rows tied on event time in a source without a created timestamp: whichever row wins,
# it must be the same row whatever features are requested, and the same online as offline.

SNAPSHOTS_VIEW = '''

snapshots = FeatureView(
    name="snapshots", entities=[driver], ttl=timedelta(days=1),
    schema=[Field("a", Float64), Field("b", Float64)],
    source=FileSource(name="snapshots_source", path="data/snapshots.parquet", timestamp_field="event_timestamp"),
)
'''


def test_tied_rows_give_the_same_row_for_any_feature_subset_and_online(engine_repo):
    repo = engine_repo
    at = NOW - timedelta(hours=1)
    pq.write_table(pa.table({
        "driver_id": [1001] * 8,
        "event_timestamp": pa.array([at] * 8, pa.timestamp("us", tz="UTC")),
        "a": [float(i) for i in range(8)],
        "b": [float(10 + i) for i in range(8)],
    }), repo / "data" / "snapshots.parquet")
    path = repo / "features" / "driver_stats.py"
    path.write_text(path.read_text().replace("from featurestore.types import Float32, Int64",
                                             "from featurestore.types import Float32, Float64, Int64") + SNAPSHOTS_VIEW)
    with FeatureStore(repo_path=repo, clock=lambda: NOW.timestamp()) as store:
        store.apply()
        entity = pl.DataFrame({"driver_id": [1001], "event_timestamp": [NOW]})
        both = store.get_historical_features(entity, ["snapshots:a", "snapshots:b"]).to_polars().row(0, named=True)
        only_a = store.get_historical_features(entity, ["snapshots:a"]).to_polars()["a"][0]
        only_b = store.get_historical_features(entity, ["snapshots:b"]).to_polars()["b"][0]
        assert both["b"] == both["a"] + 10  # one row
        assert (only_a, only_b) == (both["a"], both["b"])
        store.materialize(None, NOW, views=["snapshots"])
        online = store.get_online_features(["snapshots:a", "snapshots:b"], [{"driver_id": 1001}]).to_dict()
        assert (online["a"][0], online["b"][0]) == (both["a"], both["b"])
