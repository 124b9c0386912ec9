"""Rows tied on event time in a source without a created timestamp: whichever row wins,
it must be the same row whatever features are requested, and the same online as offline."""

from datetime import timedelta

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from featurestore import FeatureStore

from .conftest import NOW

SNAPSHOTS_VIEW = '''

snapshots = FeatureView(
    name="snapshots", entities=[driver], ttl=timedelta(days=1),
    schema=[Field("a", Float64), Field("b", Float64)],
    source=FileSource(name="snapshots_source", path="data/snapshots.parquet", timestamp_field="event_timestamp"),
)
'''


def test_tied_rows_give_the_same_row_for_any_feature_subset_and_online(repo):
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
