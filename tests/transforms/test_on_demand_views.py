"""On-demand feature views: the same transform, the same values, offline and online."""

from __future__ import annotations

import json
import math
import shlex
from datetime import datetime, timezone

import pandas as pd
import pyarrow as pa
import pytest
from fastapi.testclient import TestClient

from featurestore import FeatureService, FeatureStore, Field, OnDemandFeatureView, RequestSource
from featurestore.config import load_config
from featurestore.errors import DefinitionError, InputError, NotFoundError
from featurestore.serialization import contents_from_registry, contents_to_specs
from featurestore.types import Float64
from serving import create_app

from .on_demand_repo import NOW, doc_blocks, repo_with_on_demand

REFS = ["driver_hourly_stats:acc_rate", "trip_features:expected_fare", "trip_features:busy",
        "trip_arrow:km_acc", "doubled:trips_x2"]
DRIVERS = [1001, 1002, 1003, 9999]  # 9999 is unknown: its source features are null
TRIP_KM = [3.2, 1.1, 0.0, 2.0]
SURGE = [1.0, 1.5, 2.25, 2.0]


def _entity_df(times=None) -> pd.DataFrame:
    return pd.DataFrame({"driver_id": DRIVERS, "event_timestamp": times or [NOW] * len(DRIVERS),
                         "trip_km": TRIP_KM, "surge": SURGE})


def _same(a: list, b: list) -> bool:
    return all((x is None or (isinstance(x, float) and math.isnan(x))) and
               (y is None or (isinstance(y, float) and math.isnan(y))) or x == y for x, y in zip(a, b))


def test_online_values_equal_the_training_set_values(odfv_store):
    offline = odfv_store.get_historical_features(_entity_df(), REFS).to_arrow()
    rows = [{"driver_id": d, "trip_km": k, "surge": s} for d, k, s in zip(DRIVERS, TRIP_KM, SURGE)]
    online = odfv_store.get_online_features(REFS, rows).to_arrow()
    assert offline.column_names == ["driver_id", "event_timestamp", "trip_km", "surge", "acc_rate",
                                    "expected_fare", "busy", "km_acc", "trips_x2"]
    assert online.column_names == ["driver_id", "acc_rate", "expected_fare", "busy", "km_acc", "trips_x2"]
    for name in online.column_names:
        assert online.column(name).to_pylist() == offline.column(name).to_pylist(), name
        assert online.schema.field(name).type == offline.schema.field(name).type, name
    fare = offline.column("expected_fare").to_pylist()
    assert fare[3] is None and fare[0] is not None  # unknown entity: null in, null out


def test_request_fields_may_come_column_major_and_outputs_only_when_asked(odfv_store):
    response = odfv_store.get_online_features(
        ["trip_features:expected_fare"], {"driver_id": DRIVERS, "trip_km": TRIP_KM, "surge": SURGE})
    out = response.to_dict()
    assert list(out) == ["driver_id", "expected_fare"]  # the source features read for it are not returned
    assert response.statuses[1][3] == "NULL_VALUE"


def test_full_feature_names_name_on_demand_outputs_after_their_view(odfv_store):
    refs = ["trip_features:busy", "doubled:trips_x2"]
    offline = odfv_store.get_historical_features(_entity_df(), refs, full_feature_names=True).to_arrow()
    online = odfv_store.get_online_features(refs, {"driver_id": DRIVERS, "trip_km": TRIP_KM, "surge": SURGE},
                                            full_feature_names=True).to_dict()
    assert list(online) == ["driver_id", "trip_features__busy", "doubled__trips_x2"]
    assert online["doubled__trips_x2"] == offline.column("doubled__trips_x2").to_pylist()


def test_a_feature_service_may_include_an_on_demand_view(odfv_store):
    service = odfv_store.get_feature_service("trip_v1")
    assert service.feature_refs == ["driver_hourly_stats:acc_rate", "trip_features:expected_fare",
                                    "trip_features:busy"]
    offline = odfv_store.get_historical_features(_entity_df(), "trip_v1").to_arrow()
    online = odfv_store.get_online_features("trip_v1", {"driver_id": DRIVERS, "trip_km": TRIP_KM,
                                                         "surge": SURGE}).to_dict()
    for name in ("acc_rate", "expected_fare", "busy"):
        assert online[name] == offline.column(name).to_pylist()


def test_http_reads_run_the_transform_with_request_fields_in_entities_or_request(odfv_store):
    rows = [{"driver_id": d, "trip_km": k, "surge": s} for d, k, s in zip(DRIVERS, TRIP_KM, SURGE)]
    expected = odfv_store.get_online_features(REFS, rows).to_dict()
    with TestClient(create_app(odfv_store, watch_interval=0)) as client:
        for body in ({"features": REFS, "entities": {"driver_id": DRIVERS, "trip_km": TRIP_KM, "surge": SURGE}},
                     {"features": REFS, "entities": {"driver_id": DRIVERS},
                      "request": {"trip_km": TRIP_KM, "surge": SURGE}}):
            answer = client.post("/get-online-features", json=body)
            assert answer.status_code == 200, answer.text
            data = answer.json()
            names = data["metadata"]["feature_names"]
            got = {n: r["values"] for n, r in zip(names, data["results"])}
            assert names == list(expected)
            for name in names:
                assert _same(got[name], expected[name]), name
        missing = client.post("/get-online-features", json={"features": REFS, "entities": {"driver_id": [1001]},
                                                            "request": {"trip_km": [1.0]}})
        assert missing.status_code == 422
        assert "'surge'" in missing.json()["error"]["message"]


def test_the_documented_curl_example_answers(odfv_store):
    line = next(b for b in doc_blocks("bash") if b.startswith("curl "))
    body = json.loads(shlex.split(line)[-1])
    with TestClient(create_app(odfv_store, watch_interval=0)) as client:
        answer = client.post("/get-online-features", json=body)
    assert answer.status_code == 200, answer.text
    assert answer.json()["metadata"]["feature_names"] == ["driver_id", "expected_fare"]


def test_missing_request_fields_are_named(odfv_store):
    with pytest.raises(InputError, match="'trip_km', 'surge'"):
        odfv_store.get_online_features(["trip_features:busy"], [{"driver_id": 1001}])
    entity_df = _entity_df().drop(columns=["surge"])
    with pytest.raises(InputError, match="'surge'"):
        odfv_store.get_historical_features(entity_df, ["trip_features:busy"]).to_arrow()
    with pytest.raises(InputError, match="Float64"):
        odfv_store.get_online_features(["trip_features:busy"],
                                       {"driver_id": [1001], "trip_km": ["far"], "surge": [1.0]})
    with pytest.raises(NotFoundError, match="trip_features"):
        odfv_store.get_online_features(["trip_featurez:busy"], {"driver_id": [1001]})
    with pytest.raises(NotFoundError, match="busy"):
        odfv_store.get_online_features(["trip_features:bussy"], {"driver_id": [1001]})


def test_on_demand_views_round_trip_through_the_registry(odfv_store):
    applied = contents_from_registry(odfv_store.registry.list(odfv_store.project))
    view = applied.on_demand_feature_views["trip_features"]
    assert view.udf is None and view.udf_module == "features.driver_stats"
    assert view.udf_qualname == "trip_features" and "def trip_features(inputs" in view.udf_source
    assert [s.name for s in view.sources] == ["driver_hourly_stats", "trip"]
    assert applied.request_sources["trip"] == RequestSource("trip", [Field("trip_km", Float64),
                                                                      Field("surge", Float64)])
    assert contents_to_specs(applied) == contents_to_specs(odfv_store.contents)
    assert odfv_store.plan() == []  # the repo and the registry agree
    edges = {(e.from_kind, e.from_name, e.to_kind, e.to_name)
             for e in odfv_store.registry.lineage(odfv_store.project, "on_demand_feature_view", "trip_features")}
    assert edges >= {("feature_view", "driver_hourly_stats", "on_demand_feature_view", "trip_features"),
                     ("data_source", "trip", "on_demand_feature_view", "trip_features"),
                     ("on_demand_feature_view", "trip_features", "feature_service", "trip_v1")}


def _apply_error(tmp_path, extra: str) -> str:
    repo = repo_with_on_demand(tmp_path, "  type: sqlite\n  path: data/online.db\n", "bad", extra)
    with FeatureStore(config=load_config(repo, env={}), clock=lambda: NOW.timestamp()) as store:
        with pytest.raises(DefinitionError) as info:
            store.apply()
        assert store.list_feature_views() == []  # nothing was committed
    return str(info.value)


BAD_HEADER = '''
import pandas as pd
from featurestore import on_demand_feature_view
from featurestore.types import Float64, String


@on_demand_feature_view(sources=[driver_hourly_stats[["conv_rate"]]], schema=[Field("ratio", Float64)])
def bad(inputs: pd.DataFrame) -> pd.DataFrame:
'''


def test_apply_refuses_a_missing_output_column(tmp_path):
    message = _apply_error(tmp_path, BAD_HEADER + '    return pd.DataFrame({"ratoi": inputs["conv_rate"]})\n')
    assert "'bad'" in message and "'ratio'" in message and "Float64" in message and "ratoi" in message


def test_apply_refuses_an_output_of_another_type(tmp_path):
    message = _apply_error(tmp_path, BAD_HEADER + '    return pd.DataFrame({"ratio": ["x"] * len(inputs)})\n')
    assert "'bad'" in message and "'ratio'" in message and "String" in message and "Float64" in message


def test_apply_names_the_line_where_the_transform_raised(tmp_path):
    message = _apply_error(tmp_path, BAD_HEADER + '    x = 1\n    return inputs["no_such_column"]\n')
    lines = (tmp_path / "repo" / "features" / "driver_stats.py").read_text().splitlines()
    line = next(i + 1 for i, text in enumerate(lines) if "no_such_column" in text)
    assert "'bad'" in message and "KeyError" in message and f"line {line}" in message


def test_definitions_are_frozen_data_a_user_could_build_by_hand():
    from featurestore.definitions import FeatureView

    trip = RequestSource("trip", [Field("trip_km", Float64)])
    by_hand = OnDemandFeatureView(name="km", sources=[trip], schema=[Field("km2", Float64)],
                                  udf=lambda t: t, mode="arrow")
    assert by_hand.request_sources == (trip,) and by_hand.feature_names == ("km2",)
    with pytest.raises(Exception):
        by_hand.name = "other"
    with pytest.raises(DefinitionError, match="mode"):
        OnDemandFeatureView(name="km", sources=[trip], schema=[Field("km2", Float64)], mode="spark")
    with pytest.raises(DefinitionError, match="no sources"):
        OnDemandFeatureView(name="km", sources=[], schema=[Field("km2", Float64)])
    with pytest.raises(DefinitionError, match="'trip_km'"):
        OnDemandFeatureView(name="km", sources=[trip, RequestSource("t2", [Field("trip_km", Float64)])],
                            schema=[Field("km2", Float64)])
    assert FeatureService(name="s", features=[by_hand]).feature_refs == ["km:km2"]
    assert not isinstance(by_hand, FeatureView)
    assert pa  # imported for the arrow mode above


def test_a_saved_training_set_lists_the_on_demand_features(odfv_store):
    job = odfv_store.get_historical_features(_entity_df(), "trip_v1")
    assert job.feature_refs == ["driver_hourly_stats:acc_rate", "trip_features:expected_fare",
                                "trip_features:busy"]
    saved = job.save("trip_training")
    table = odfv_store.get_saved_dataset("trip_training").to_arrow()
    assert saved["features"] == job.feature_refs
    assert table.column("expected_fare").to_pylist() == job.to_arrow().column("expected_fare").to_pylist()


def test_no_entity_rows_give_empty_typed_columns_without_calling_the_function(odfv_store):
    online = odfv_store.get_online_features(["trip_features:expected_fare"], {"driver_id": [], "trip_km": [],
                                                                              "surge": []})
    assert online.to_dict() == {"driver_id": [], "expected_fare": []}
    offline = odfv_store.get_historical_features(_entity_df().iloc[:0], ["trip_features:busy"]).to_arrow()
    assert offline.num_rows == 0 and offline.schema.field("busy").type == pa.int64()


def test_a_model_over_a_service_with_an_on_demand_view_reads_its_outputs(odfv_store):
    from featurestore.models.lineage import resolve_inputs
    from featurestore.types import Float32, Int64

    inputs = resolve_inputs(odfv_store, "trip_v1", None)
    assert inputs.refs == ("driver_hourly_stats:acc_rate", "trip_features:expected_fare", "trip_features:busy")
    assert inputs.columns == ("acc_rate", "expected_fare", "busy")
    assert inputs.types == (Float32, Float64, Int64)
    assert set(inputs.view_versions) == {"driver_hourly_stats", "trip_features"}
    assert all(v is not None for v in inputs.view_versions.values())


def test_a_server_process_imports_the_function_from_the_repo_folder(tmp_path):
    from ..serving.served import Server

    now = datetime.now(timezone.utc)  # the server reads with the real clock
    repo = repo_with_on_demand(tmp_path, "  type: sqlite\n  path: data/online.db\n", "served_odfv", now=now)
    with FeatureStore(config=load_config(repo, env={})) as store:
        store.apply()
        store.materialize_incremental(now)
        expected = store.get_online_features(REFS, {"driver_id": DRIVERS, "trip_km": TRIP_KM,
                                                    "surge": SURGE}).to_dict()
    server = Server(repo)
    try:
        answer = server.client.post("/get-online-features", json={
            "features": REFS, "entities": {"driver_id": DRIVERS}, "request": {"trip_km": TRIP_KM, "surge": SURGE}})
    finally:
        server.stop()
    assert answer.status_code == 200, answer.text
    data = answer.json()
    got = {n: r["values"] for n, r in zip(data["metadata"]["feature_names"], data["results"])}
    assert list(got) == list(expected) and got["km_acc"][0] is not None
    for name in got:
        assert _same(got[name], expected[name]), name
