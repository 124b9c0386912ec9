from datetime import timedelta

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from featurestore import FeatureStore
from featurestore.errors import DefinitionError, SchemaError
from featurestore.types import Int64

from .conftest import NOW

DEFS = "features/driver_stats.py"


def edit(repo, old, new):
    path = repo / DEFS
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def snapshot(store):
    return [(o.kind, o.name, o.version) for o in store.registry.list(store.project)], store.registry.revision(store.project)


def test_apply_registers_everything_and_a_second_apply_changes_nothing(repo):
    with FeatureStore(repo_path=repo) as store:
        first = store.apply()
        assert {(c.kind, c.name, c.action) for c in first.changes} == {
            ("entity", "driver", "add"),
            ("data_source", "driver_hourly_stats_source", "add"),
            ("data_source", "driver_stats_push", "add"),
            ("feature_view", "driver_hourly_stats", "add"),
            ("feature_view", "driver_hourly_stats_fresh", "add"),
            ("feature_service", "driver_activity_v1", "add"),
        }
        assert store.apply().changes == []
        assert store.plan() == []
        assert [v.name for v in store.list_feature_views()] == ["driver_hourly_stats", "driver_hourly_stats_fresh"]


def test_join_key_type_is_taken_from_the_data(store):
    view = store.get_feature_view("driver_hourly_stats")
    assert {f.name: f.dtype for f in view.schema}["driver_id"] == Int64
    assert view.feature_names == ("conv_rate", "acc_rate", "avg_daily_trips")


def test_a_change_is_planned_then_applied_as_a_new_version(store, repo):
    edit(repo, "ttl=timedelta(days=1),\n    schema=[\n        Field(name=\"conv_rate\", dtype=Float32, description",
         "ttl=timedelta(hours=6),\n    schema=[\n        Field(name=\"conv_rate\", dtype=Float32, description")
    changes = store.plan()
    assert [(c.kind, c.name, c.action, c.fields) for c in changes] == [
        ("feature_view", "driver_hourly_stats", "change", ("ttl_seconds",))]
    assert store.registry.get(store.project, "feature_view", "driver_hourly_stats").version == 1
    store.apply()
    history = store.registry.history(store.project, "feature_view", "driver_hourly_stats")
    assert [h.version for h in history] == [1, 2]
    assert history[0].spec["ttl_seconds"] == 86400 and history[1].spec["ttl_seconds"] == 21600
    assert store.get_feature_view("driver_hourly_stats").ttl.total_seconds() == 21600


def test_a_ttl_is_stored_exactly_in_the_spec_shape_earlier_versions_wrote(store, repo):
    spec = store.registry.get(store.project, "feature_view", "driver_hourly_stats").spec
    # ttl_seconds alone, as before ttl_us existed: a repo applied then plans no change now.
    assert spec["ttl_seconds"] == 86400 and "ttl_us" not in spec
    edit(repo, "ttl=timedelta(days=1),\n    schema=[\n        Field(name=\"conv_rate\"",
         "ttl=timedelta(days=400 * 365, microseconds=3),\n    schema=[\n        Field(name=\"conv_rate\"")
    store.apply()
    ttl = timedelta(days=400 * 365, microseconds=3)
    assert timedelta(seconds=ttl.total_seconds()) != ttl  # float seconds cannot hold this one
    spec = store.registry.get(store.project, "feature_view", "driver_hourly_stats").spec
    assert spec["ttl_us"] == ttl // timedelta(microseconds=1)
    assert store.get_feature_view("driver_hourly_stats").ttl == ttl
    assert store.plan() == []


def test_removed_definitions_are_removed_from_the_registry(store, repo):
    text = (repo / DEFS).read_text()
    (repo / DEFS).write_text(text[: text.index("driver_activity_v1 =")])
    changes = store.apply().changes
    assert [(c.kind, c.name, c.action) for c in changes] == [("feature_service", "driver_activity_v1", "remove")]
    assert store.list_feature_services() == []


def test_lineage_runs_source_to_view_to_service(store):
    edges = store.registry.lineage(store.project, "feature_view", "driver_hourly_stats")
    pairs = {(e.from_name, e.to_name) for e in edges}
    assert ("driver_hourly_stats_source", "driver_hourly_stats") in pairs
    assert ("driver_hourly_stats", "driver_activity_v1") in pairs


def test_missing_source_file_fails_naming_it_and_changes_nothing(store, repo):
    before = snapshot(store)
    edit(repo, "data/driver_stats.parquet", "data/missing.parquet")
    with pytest.raises(Exception) as info:
        store.apply()
    assert "missing.parquet" in str(info.value)
    assert snapshot(store) == before


def test_source_lacking_a_schema_column_fails_naming_file_and_column(store, repo):
    before = snapshot(store)
    table = pq.read_table(repo / "data" / "driver_stats.parquet").drop_columns(["acc_rate"])
    pq.write_table(table, repo / "data" / "driver_stats.parquet")
    with pytest.raises(SchemaError, match=r"driver_stats.parquet.*'acc_rate'"):
        store.apply()
    assert snapshot(store) == before


def test_column_of_the_wrong_type_names_both_types(store, repo):
    table = pq.read_table(repo / "data" / "driver_stats.parquet")
    i = table.column_names.index("avg_daily_trips")
    table = table.set_column(i, "avg_daily_trips", table.column(i).cast(pa.string()))
    pq.write_table(table, repo / "data" / "driver_stats.parquet")
    with pytest.raises(SchemaError, match=r"'avg_daily_trips'.*is String but the schema declares Int64"):
        store.apply()


def test_a_module_that_raises_is_named_and_nothing_is_committed(store, repo):
    before = snapshot(store)
    edit(repo, "driver_activity_v1 = FeatureService(", "raise RuntimeError('half-edited')\ndriver_activity_v1 = FeatureService(")
    with pytest.raises(DefinitionError, match=r"features/driver_stats.py, line \d+: .*RuntimeError: half-edited"):
        store.apply()
    assert snapshot(store) == before


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
