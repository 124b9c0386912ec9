"""apply/plan reject an aggregation whose function cannot read its column's type, before
anything is committed (not later, at the first training set, push or lookup)."""

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from featurestore.errors import SchemaError

from .conftest import NOW

TRIPS_VIEW = '''

from featurestore import Aggregation
from featurestore.types import String

trips = FileSource(name="trips", path="data/trips.parquet", timestamp_field="event_timestamp")
trip_stats = FeatureView(
    name="trip_stats", entities=[driver], source=PushSource(name="trips_push", batch_source=trips),
    schema=[Field("city", String)],
    aggregations=[Aggregation("city", "sum", timedelta(minutes=10))],
)
'''


def test_an_aggregation_of_the_wrong_column_type_fails_apply_and_changes_nothing(store, repo):
    pq.write_table(pa.table({"driver_id": [1001], "event_timestamp": pa.array([NOW], pa.timestamp("us", tz="UTC")),
                             "city": ["Paris"]}), repo / "data" / "trips.parquet")
    before = store.registry.revision(store.project)
    path = repo / "features" / "driver_stats.py"
    path.write_text(path.read_text() + TRIPS_VIEW)
    for step in (store.plan, store.apply):
        with pytest.raises(SchemaError, match=r"'trip_stats'.*'city_sum_10m' \(sum\).*'city'.*String.*int or float"):
            step()
    assert store.registry.revision(store.project) == before
    assert "trip_stats" not in [v.name for v in store.list_feature_views()]
