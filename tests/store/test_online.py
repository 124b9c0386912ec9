import random
import textwrap
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from featurestore import FeatureStore, FieldStatus
from featurestore.config import load_config
from featurestore.errors import InputError, NotFoundError, SchemaError

from .conftest import NOW

REFS = ["driver_hourly_stats:conv_rate", "driver_hourly_stats:acc_rate", "driver_hourly_stats:avg_daily_trips"]


@pytest.fixture(params=["sqlite", "redis"])
def online_env(request):
    if request.param == "redis":
        return {"FEATURESTORE_REDIS_URL": request.getfixturevalue("redis_url")}
    return {}


def open_store(repo, env, now=NOW, **backends):
    return FeatureStore(config=load_config(repo, env=env), clock=lambda: now.timestamp(), **backends)


@pytest.fixture
def online_store(repo, online_env):
    with open_store(repo, online_env) as store:
        store.apply()
        yield store


def test_never_materialized_view_reads_null_not_found(online_store):
    response = online_store.get_online_features(REFS, [{"driver_id": 1001}])
    assert response.to_dict() == {"driver_id": [1001], "conv_rate": [None], "acc_rate": [None], "avg_daily_trips": [None]}
    assert response.statuses[1:] == [[FieldStatus.NOT_FOUND]] * 3


def test_materialize_then_read_latest_values_with_statuses(online_store, repo):
    [result] = online_store.materialize(NOW - timedelta(days=2), NOW, views=["driver_hourly_stats"])
    assert result.rows == 5
    response = online_store.get_online_features(REFS, {"driver_id": [1002, 4242, 1001]})
    data = pl.from_arrow(pq.read_table(repo / "data" / "driver_stats.parquet"))
    latest = data.filter(pl.col("event_timestamp") == NOW)
    for j, driver in ((0, 1002), (2, 1001)):
        row = latest.filter(pl.col("driver_id") == driver).row(0, named=True)
        assert response.values[1][j] == pytest.approx(row["conv_rate"])
        assert response.values[3][j] == row["avg_daily_trips"]
        assert response.statuses[1][j] == FieldStatus.PRESENT
        assert response.event_timestamps[1][j] == int(NOW.timestamp() * 1_000_000)
    assert [s[1] for s in response.statuses[1:]] == [FieldStatus.NOT_FOUND] * 3
    table = response.to_arrow()
    assert table.schema.field("conv_rate").type == pa.float32()
    assert table.column("driver_id").to_pylist() == [1002, 4242, 1001]


def test_values_older_than_ttl_are_outside_max_age(online_store, repo):
    online_store.materialize(None, NOW, views=["driver_hourly_stats"])
    with open_store(repo, {}, now=NOW + timedelta(days=1, seconds=1), online=online_store.online) as later:
        response = later.get_online_features(REFS, [{"driver_id": 1001}])
        assert response.values[1] == [None]
        assert response.statuses[1] == [FieldStatus.OUTSIDE_MAX_AGE]


def test_materialize_twice_changes_nothing(online_store):
    online_store.materialize(None, NOW)
    first = online_store.get_online_features(REFS, {"driver_id": [1001, 1002, 1003]}).to_dict()
    online_store.materialize(None, NOW)
    assert online_store.get_online_features(REFS, {"driver_id": [1001, 1002, 1003]}).to_dict() == first


def test_incremental_continues_from_the_watermark(online_store):
    first = online_store.materialize_incremental(NOW - timedelta(hours=10), views=["driver_hourly_stats"])
    assert first[0].start == NOW - timedelta(hours=10) - timedelta(days=1)
    second = online_store.materialize_incremental(NOW, views=["driver_hourly_stats"])
    assert second[0].start == NOW - timedelta(hours=10)
    response = online_store.get_online_features(REFS, [{"driver_id": 1001}])
    assert response.event_timestamps[1] == [int(NOW.timestamp() * 1_000_000)]


def test_pushed_newer_value_survives_materializing_older_data(online_store):
    push = {"driver_id": [1001], "event_timestamp": [NOW + timedelta(minutes=1)],
            "conv_rate": [0.99], "acc_rate": [0.5], "avg_daily_trips": [7]}
    online_store.push("driver_stats_push", push, to="online")
    refs = ["driver_hourly_stats_fresh:conv_rate", "driver_hourly_stats_fresh:avg_daily_trips"]
    online_store.materialize(None, NOW, views=["driver_hourly_stats_fresh"])
    response = online_store.get_online_features(refs, [{"driver_id": 1001}, {"driver_id": 1002}])
    assert response.values[1][0] == pytest.approx(0.99)
    assert response.values[2] == [7, response.values[2][1]] and response.values[2][1] is not None


def test_push_offline_appears_in_training_sets(online_store):
    at = NOW + timedelta(hours=3)
    online_store.push("driver_stats_push", [{"driver_id": 1005, "event_timestamp": at, "conv_rate": 0.123,
                                             "acc_rate": 0.5, "avg_daily_trips": 11}], to="offline")
    df = pl.DataFrame({"driver_id": [1005], "event_timestamp": [at]})
    out = online_store.get_historical_features(df, ["driver_hourly_stats_fresh:avg_daily_trips"]).to_polars()
    assert out["avg_daily_trips"].to_list() == [11]
    # as in Feast, the view over the push source's batch source sees them too
    out = online_store.get_historical_features(df, ["driver_hourly_stats:avg_daily_trips"]).to_polars()
    assert out["avg_daily_trips"].to_list() == [11]


def test_bad_push_is_rejected_and_writes_nothing(online_store):
    refs = ["driver_hourly_stats_fresh:conv_rate"]
    with pytest.raises(SchemaError, match="conv_rate.*String.*Float32"):
        online_store.push("driver_stats_push", {"driver_id": [1001], "event_timestamp": [NOW], "conv_rate": ["high"],
                                                "acc_rate": [0.1], "avg_daily_trips": [1]}, to="online_and_offline")
    with pytest.raises(SchemaError, match="missing column 'acc_rate'"):
        online_store.push("driver_stats_push", {"driver_id": [1001], "event_timestamp": [NOW], "conv_rate": [0.1],
                                                "avg_daily_trips": [1]})
    with pytest.raises(NotFoundError, match="did you mean 'driver_stats_push'"):
        online_store.push("driver_stats_pusher", {"driver_id": [1]})
    assert online_store.get_online_features(refs, [{"driver_id": 1001}]).statuses[1] == [FieldStatus.NOT_FOUND]
    assert not (online_store.config.offline_store / "pushed").exists()


def test_wrong_key_type_and_missing_key_are_clear_errors(online_store):
    with pytest.raises(InputError, match="join key 'driver_id' is Int64 but got str"):
        online_store.get_online_features(REFS, [{"driver_id": "driver-1001"}])
    with pytest.raises(InputError, match="no join key 'driver_id'"):
        online_store.get_online_features(REFS, [{"driver": 1001}])


def test_materializing_an_offline_only_view_is_an_error(online_store, repo):
    path = repo / "features" / "driver_stats.py"
    path.write_text(path.read_text().replace("    online=True,\n", "    online=False,\n"))
    online_store.apply()
    with pytest.raises(InputError, match="online=False"):
        online_store.materialize(None, NOW, views=["driver_hourly_stats"])


AGREEMENT_DEFS = """
from datetime import timedelta
from featurestore import Entity, FeatureView, Field, FileSource
from featurestore.types import Float64, Int64, String

pair = Entity(name="pair", join_keys=["user_id", "item"])
src = FileSource(path="data/events.parquet", timestamp_field="ts", created_timestamp_field="created")
scores = FeatureView(name="scores", entities=[pair], ttl=timedelta(hours=3),
                     schema=[Field("score", Float64), Field("clicks", Int64), Field("label", String)], source=src)
"""


def test_online_agrees_with_offline_on_random_data(tmp_path, online_env):
    rng = random.Random(7)
    repo = tmp_path / "agree"
    (repo / "data").mkdir(parents=True)
    (repo / "featurestore.yaml").write_text(f"project: agree_{rng.randrange(10**9)}\n")
    (repo / "defs.py").write_text(textwrap.dedent(AGREEMENT_DEFS))
    base = datetime(2024, 1, 1, tzinfo=timezone.utc)
    rows = []
    for _ in range(3000):
        ts = base + timedelta(minutes=rng.randrange(0, 24 * 60, 15))  # coarse: many timestamp ties
        rows.append({"user_id": rng.randrange(60), "item": rng.choice("abcd"), "ts": ts,
                     "created": ts + timedelta(seconds=rng.randrange(0, 100)),
                     "score": rng.random() if rng.random() > 0.1 else None,
                     "clicks": rng.randrange(100), "label": rng.choice(["x", "y", ""])})
    pq.write_table(pa.Table.from_pylist(rows), repo / "data" / "events.parquet")
    end = base + timedelta(hours=20)
    with open_store(repo, online_env, now=end) as store:
        store.apply()
        store.materialize(None, end)
        keys = sorted({(r["user_id"], r["item"]) for r in rows}) + [(999, "z")]
        entity = pl.DataFrame({"user_id": [k[0] for k in keys], "item": [k[1] for k in keys],
                               "event_timestamp": [end] * len(keys)})
        refs = ["scores:score", "scores:clicks", "scores:label"]
        offline = store.get_historical_features(entity, refs).to_polars()
        online = store.get_online_features(refs, {"user_id": [k[0] for k in keys], "item": [k[1] for k in keys]})
        got = online.to_dict()
        for name in ("score", "clicks", "label"):
            assert got[name] == offline[name].to_list(), name
        assert sum(v is not None for v in got["clicks"]) > 50  # the window is not trivially empty


def test_changing_a_feature_type_clears_its_online_values(online_store, repo):
    refs = ["driver_hourly_stats:conv_rate"]
    online_store.materialize_incremental(NOW, views=["driver_hourly_stats"])
    assert online_store.get_online_features(refs, [{"driver_id": 1001}]).statuses[1] == [FieldStatus.PRESENT]
    path = repo / "features" / "driver_stats.py"
    path.write_text(path.read_text().replace(
        'Field(name="conv_rate", dtype=Float32, description', 'Field(name="conv_rate", dtype=Float64, description'
    ).replace("import Float32, Int64", "import Float32, Float64, Int64"))
    online_store.apply()
    # The stored 4-byte floats would misread as Float64: they are gone, not misdecoded.
    assert online_store.get_online_features(refs, [{"driver_id": 1001}]).statuses[1] == [FieldStatus.NOT_FOUND]
    [result] = online_store.materialize_incremental(NOW, views=["driver_hourly_stats"])
    assert result.rows == 5  # from scratch: the watermark was reset with the values
    response = online_store.get_online_features(refs, [{"driver_id": 1001}])
    data = pl.from_arrow(pq.read_table(repo / "data" / "driver_stats.parquet"))
    want = data.filter((pl.col("driver_id") == 1001) & (pl.col("event_timestamp") == NOW))["conv_rate"][0]
    assert response.values[1][0] == pytest.approx(want)
    assert online_store.get_feature_view("driver_hourly_stats").features[0].dtype.name == "Float64"


def test_removing_a_view_clears_its_online_values(online_store, repo):
    online_store.materialize(None, NOW, views=["driver_hourly_stats"])
    view = online_store.get_feature_view("driver_hourly_stats")
    path = repo / "features" / "driver_stats.py"
    text = path.read_text()
    start = text.index("driver_hourly_stats = FeatureView(")
    end = text.index("# Fresh values pushed")
    text = text[:start] + text[end:]
    text = text.replace('driver_hourly_stats[["conv_rate", "acc_rate"]], ', "")
    path.write_text(text)
    online_store.apply()
    from featurestore.online.base import online_view

    [[row]] = online_store.online.read([(online_view(view), ("conv_rate",), [(1001,)])])
    assert row is None


def test_unreachable_redis_is_a_clear_error_naming_the_url_and_a_rerun_completes(repo, redis_url):
    from featurestore.errors import StoreUnavailableError

    with open_store(repo, {"FEATURESTORE_REDIS_URL": "redis://:secret@127.0.0.1:1/0"}) as store:
        store.apply()
        with pytest.raises(StoreUnavailableError, match=r"redis://:\*\*\*@127\.0\.0\.1:1/0") as info:
            store.materialize(None, NOW, views=["driver_hourly_stats"])
        assert "secret" not in str(info.value)
    with open_store(repo, {"FEATURESTORE_REDIS_URL": redis_url}) as store:
        [result] = store.materialize(None, NOW, views=["driver_hourly_stats"])
        assert result.rows == 5
        response = store.get_online_features(REFS, {"driver_id": [1001, 1002, 1003, 1004, 1005]})
        assert response.statuses[1] == [FieldStatus.PRESENT] * 5


def test_one_view_name_may_be_given_as_a_plain_string(online_store):
    [result] = online_store.materialize(None, NOW, views="driver_hourly_stats")
    assert result.view == "driver_hourly_stats" and result.rows == 5


# Join keys straight from numpy/pandas: arrays and Series as the columns of a dict, numpy
# scalars in row dicts (what iterating a DataFrame gives).

ONE_REF = ["driver_hourly_stats:conv_rate"]


@pytest.fixture
def materialized(store):
    store.materialize(None, NOW, views=["driver_hourly_stats"])
    return store


def test_numpy_and_pandas_join_keys_read_like_python_ints(materialized):
    want = materialized.get_online_features(ONE_REF, {"driver_id": [1001, 1002]}).to_dict()
    assert want["conv_rate"][0] is not None
    for entities in (
        {"driver_id": np.array([1001, 1002])},
        {"driver_id": pd.Series([1001, 1002])},
        [{"driver_id": np.int64(1001)}, {"driver_id": np.int32(1002)}],
        pd.DataFrame({"driver_id": [1001, 1002]}).to_dict("list"),
    ):
        got = materialized.get_online_features(ONE_REF, entities).to_dict()
        assert got == want
        assert all(type(v) is int for v in got["driver_id"])


def test_a_numpy_value_of_the_wrong_kind_is_still_refused(materialized):
    with pytest.raises(InputError, match="driver_id"):
        materialized.get_online_features(ONE_REF, {"driver_id": np.array([1001.5])})


def test_a_read_plan_built_while_the_definitions_are_swapped_is_not_kept(store):
    # The server's registry watch swaps definitions on a worker thread while requests build
    # plans on the event loop: a plan built from the old definitions must not outlive them.
    reader = store.online_reader
    current = reader._contents
    reads = []

    def contents():
        reads.append(current())
        if len(reads) == 1:
            reader.reset()  # the swap lands right after this plan read the old definitions
        return reads[-1]

    reader._contents = contents
    first = reader.plan(REFS)
    second = reader.plan(REFS)
    assert len(reads) == 2 and second is not first
    assert reader.plan(REFS) is second and len(reads) == 2
