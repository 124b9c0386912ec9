from datetime import timedelta

import pytest

from featurestore import Aggregation, Entity, FeatureService, FeatureView, Field, FileSource, PushSource
from featurestore.errors import DefinitionError, NotFoundError
from featurestore.types import Array, Float32, Float64, Int64, String, parse_type

driver = Entity(name="driver", join_keys=["driver_id"])
source = FileSource(path="data/driver_stats.parquet", timestamp_field="event_timestamp")


def view(**overrides):
    args = dict(
        name="driver_stats",
        entities=[driver],
        ttl=timedelta(hours=2),
        schema=[Field("driver_id", Int64), Field("conv_rate", Float32), Field("trips", Int64)],
        source=source,
    )
    args.update(overrides)
    return FeatureView(**args)


def test_view_features_exclude_join_keys_and_keep_order():
    v = view()
    assert v.join_keys == ("driver_id",)
    assert v.feature_names == ("conv_rate", "trips")
    assert v.batch_source is source


def test_definitions_are_frozen_data():
    v = view()
    with pytest.raises(AttributeError):
        v.name = "other"  # type: ignore[misc]
    assert view() == v


def test_duplicate_field_names_are_rejected():
    with pytest.raises(DefinitionError, match="'conv_rate' twice"):
        view(schema=[Field("conv_rate", Float32), Field("conv_rate", Float64)])


@pytest.mark.parametrize("ttl", [3600, "2h", 1.5])
def test_ttl_must_be_a_timedelta(ttl):
    with pytest.raises(DefinitionError, match="ttl must be a datetime.timedelta"):
        view(ttl=ttl)


def test_ttl_zero_or_none_means_no_limit():
    assert view(ttl=None).ttl is None
    assert view(ttl=timedelta(0)).ttl is None


def test_negative_ttl_is_rejected():
    with pytest.raises(DefinitionError, match="negative"):
        view(ttl=timedelta(hours=-1))


def test_view_without_features_is_rejected():
    with pytest.raises(DefinitionError, match="no features"):
        view(schema=[Field("driver_id", Int64)])


def test_entities_must_be_entity_objects():
    with pytest.raises(DefinitionError, match="entities must be"):
        view(entities=["driver"])


def test_field_dtype_must_be_a_feature_type():
    with pytest.raises(DefinitionError, match="featurestore.types"):
        Field("x", int)  # type: ignore[arg-type]


def test_invalid_names_are_rejected():
    with pytest.raises(DefinitionError, match="not valid"):
        Entity(name="driver id")
    with pytest.raises(DefinitionError, match="not valid"):
        view(name="driver-stats")


@pytest.mark.parametrize("name", ["p" * 129, "caf\u00e9", "a\x00", ""])
def test_a_push_source_name_is_a_folder_name_so_it_follows_the_name_rule(name):
    # It names the folder pushed/<name>/: 300 characters made every push fail on the file system.
    with pytest.raises(DefinitionError, match="push source name .* is not valid.*at most 128 characters"):
        PushSource(name=name, batch_source=FileSource(path="x.parquet"))
    assert PushSource(name="p" * 128, batch_source=FileSource(path="x.parquet")).name == "p" * 128


def test_entity_defaults_join_key_to_its_name():
    assert Entity(name="customer").join_keys == ("customer",)
    assert Entity(name="trip", join_keys="trip_id").join_keys == ("trip_id",)


def test_composite_join_keys():
    pair = Entity(name="pair", join_keys=["driver_id", "rider_id"])
    v = view(entities=[pair], schema=[Field("conv_rate", Float32)])
    assert v.join_keys == ("driver_id", "rider_id")
    with pytest.raises(DefinitionError, match="composite"):
        pair.join_key


def test_same_join_key_from_two_entities_is_rejected():
    other = Entity(name="driver2", join_keys=["driver_id"])
    with pytest.raises(DefinitionError, match="join key 'driver_id' twice"):
        view(entities=[driver, other])


def test_file_source_infers_format_and_name():
    csv = FileSource(path="data/trips.csv", timestamp_field="ts")
    assert csv.file_format == "csv" and csv.name == "trips"
    assert source.file_format == "parquet"
    with pytest.raises(DefinitionError, match="file_format"):
        FileSource(path="x.json", file_format="json")
    with pytest.raises(DefinitionError, match="must differ"):
        FileSource(path="x.parquet", timestamp_field="ts", created_timestamp_field="ts")


def test_projection_and_feature_service():
    v = view()
    service = FeatureService(name="model_v1", features=[v[["trips"]]])
    assert service.feature_refs == ["driver_stats:trips"]
    full = FeatureService(name="model_v2", features=[v])
    assert full.feature_refs == ["driver_stats:conv_rate", "driver_stats:trips"]


def test_projection_of_unknown_feature_names_close_matches():
    with pytest.raises(NotFoundError, match="did you mean 'conv_rate'"):
        view()[["conv_rat"]]


def test_feature_service_rejects_empty_and_duplicate_views():
    with pytest.raises(DefinitionError, match="lists no features"):
        FeatureService(name="empty", features=[])
    with pytest.raises(DefinitionError, match="twice"):
        FeatureService(name="dup", features=[view(), view()[["trips"]]])


def test_push_source_needs_a_file_batch_source():
    push = PushSource(name="driver_push", batch_source=source)
    assert push.timestamp_field == "event_timestamp"
    with pytest.raises(DefinitionError, match="batch_source must be a FileSource"):
        PushSource(name="bad", batch_source="data/x.parquet")  # type: ignore[arg-type]


def test_aggregation_names_and_types():
    v = view(schema=[Field("fare", Float32)], aggregations=[
        Aggregation("fare", "sum", timedelta(minutes=10)),
        Aggregation("fare", "count", timedelta(hours=1, minutes=30)),
        Aggregation("fare", "mean", timedelta(days=7)),
    ])
    assert v.feature_names == ("fare_sum_10m", "fare_count_1h30m", "fare_mean_7d")
    assert [f.dtype for f in v.features] == [Float32, Int64, Float64]


def test_aggregation_validation():
    with pytest.raises(DefinitionError, match="function 'median'"):
        Aggregation("fare", "median", timedelta(minutes=5))
    with pytest.raises(DefinitionError, match="time_window"):
        Aggregation("fare", "sum", 600)  # type: ignore[arg-type]
    with pytest.raises(NotFoundError, match="'fares'"):
        view(schema=[Field("fare", Float32)], aggregations=[Aggregation("fares", "sum", timedelta(minutes=5))])


def test_types_round_trip_through_their_names():
    for t in (Int64, Float32, String, Array(Float32)):
        assert parse_type(str(t)) == t
    with pytest.raises(TypeError):
        Array(Array(Int64))


def test_feast_file_urls_are_local_paths():
    assert FileSource(path="file:///data/trips.parquet", timestamp_field="ts").path == "/data/trips.parquet"
