"""The UI's page data, gathered over the example repo after a life (no browser): what each
page shows comes from these functions, so their answers are pinned here."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from featurestore import FeatureStore
from featurestore.errors import InputError, NotFoundError
from serving.ui.definitions import definition_page, features_page, search
from serving.ui.jobs_page import jobs_page
from serving.ui.lineage_graph import lineage_page
from serving.ui.models_pages import model_page, models_page, rollout_page
from serving.ui.monitoring_pages import ReportCache, model_monitoring_page
from serving.ui.overview import overview_page

from .world import MODEL


@pytest.fixture(scope="module")
def store(world):
    with FeatureStore(repo_path=world.repo) as opened:
        yield opened


def test_overview_shows_freshness_failures_rollouts_and_alerts(store, world):
    page = overview_page(store, datetime.now(timezone.utc), trusted=False)
    counts = {c["kind"]: c["count"] for c in page["counts"]}
    assert counts["feature_view"] == 3 and counts["model_version"] == 2 and counts["on_demand_feature_view"] == 3
    fresh = {f["view"]: f for f in page["freshness"]}
    assert set(fresh) == {"driver_hourly_stats", "driver_hourly_stats_fresh", "driver_rate_windows"}
    assert fresh["driver_hourly_stats"]["last_status"] == "succeeded" and not fresh["driver_hourly_stats"]["stale"]
    assert fresh["driver_hourly_stats"]["loaded_until"] == world.now
    assert fresh["driver_hourly_stats_fresh"]["last_status"] == "failed"
    assert [(j["view"], j["status"]) for j in page["failing"]] == [("driver_hourly_stats_fresh", "failed")]
    assert page["failing"][0]["owner"] == "ui-test"
    assert page["active_rollouts"] == [] and [r["state"] for r in page["finished_rollouts"]] == ["rolled_back"]
    [alert] = page["alerts"]
    assert alert["model"] == MODEL and alert["dataset_drift"] and "conv_rate" in alert["drifted"]


def test_a_view_shows_its_versions_and_what_changed_between_them(store):
    page = definition_page(store, "feature_view", "driver_hourly_stats")
    assert page["object"]["ttl"] == "2d" and page["object"]["key_columns"] == ["driver_id"]
    assert page["object"]["features"] == ["conv_rate", "acc_rate", "avg_daily_trips"]
    newest, first = page["history"]
    assert (newest["version"], first["version"]) == (2, 1) and first["changes"] == []
    changes = {c["path"]: (c["old"], c["new"]) for c in newest["changes"]}
    assert changes == {"ttl_seconds": ("86400.0", "172800.0"), "tags.tier": ("(absent)", '"gold"')}


def test_features_lists_aggregations_and_on_demand_code(store):
    groups = {g["kind"]: {o["name"]: o for o in g["objects"]} for g in features_page(store)["groups"]}
    windows = groups["feature_view"]["driver_rate_windows"]
    assert [(a["function"], a["window"]) for a in windows["aggregations"]] == [("mean", "6h"), ("max", "1d")]
    transform = groups["on_demand_feature_view"]["trip_features"]
    assert transform["mode"] == "pandas" and "def trip_features" in transform["code"]
    assert groups["feature_service"]["driver_activity_v1"]["features"] == [
        "driver_hourly_stats:conv_rate", "driver_hourly_stats:acc_rate", "driver_hourly_stats_fresh:avg_daily_trips"]


def test_search_finds_features_first_then_objects(store):
    hits = search(store, "ACC_rate")["hits"]
    assert [h["name"] for h in hits if h["what"] == "feature"] == [
        "driver_hourly_stats:acc_rate", "driver_hourly_stats_fresh:acc_rate"]
    assert hits[0]["anchor"] == "feature-acc_rate"
    described = search(store, "offers accepted")["hits"]  # a field's description matches too
    assert [h["name"] for h in described] == ["driver_hourly_stats:conv_rate"]
    assert search(store, "  ")["hits"] == [] and search(store, "no-such-thing")["hits"] == []


def test_lineage_of_a_view_reaches_the_aliases_of_the_models_that_read_it(store):
    page = lineage_page(store, "feature_view", "driver_hourly_stats_fresh")
    ids = {n["id"] for n in page["nodes"]}
    assert {"data_source:driver_stats_push", "feature_service:driver_activity_v1", "saved_dataset:driver_training",
            "model_version:driver_model/1", "model_alias:driver_model@champion"} <= ids
    assert "feature_view:driver_rate_windows" not in ids  # a sibling, neither upstream nor downstream
    assert {"from": "model_version:driver_model/1", "to": "model_alias:driver_model@champion"} in page["edges"]
    layers = {n["kind"]: n["layer"] for n in page["nodes"]}
    assert layers["data_source"] < layers["feature_view"] < layers["feature_service"] < layers["model_version"]
    whole = lineage_page(store)
    assert len(whole["nodes"]) > len(page["nodes"]) and whole["focus"] is None
    with pytest.raises(NotFoundError, match="nosuch"):
        lineage_page(store, "feature_view", "nosuch")


def test_models_show_versions_aliases_with_history_and_the_rolled_back_rollout(store):
    [listed] = models_page(store)["models"]
    assert listed["aliases"] == {"challenger": 2, "champion": 1} and listed["monitor"]["alert"]
    page = model_page(store, MODEL)
    assert [v["version"] for v in page["versions"]] == [2, 1]
    first = page["versions"][1]
    assert first["training_dataset"]["name"] == "driver_training" and "train_accuracy" in first["metrics"]
    assert [c["name"] for c in first["signature"]["inputs"]] == ["conv_rate", "acc_rate", "avg_daily_trips"]
    champion = next(a for a in page["aliases"] if a["alias"] == "champion")
    assert champion["moves"][0]["reason"] == "trained by train.py"
    rollout = rollout_page(store, MODEL)
    assert [e["decision"] for e in rollout["events"]] == ["rolled_back", "failed_check", "step", "started"]
    assert [d["value"] for d in rollout["chart"]["dots"]] == [10, 20, 20, 0]
    assert rollout["rollout"]["failure"]["check"] == "js_distance"
    with pytest.raises(NotFoundError, match="nosuch"):
        model_page(store, "nosuch")


def test_monitoring_shows_the_latest_run_and_the_history(store):
    page = model_monitoring_page(store, MODEL)
    assert page["latest"]["dataset_drift"] and [r["run"] for r in page["runs"]] == [2, 1]
    assert [d["value"] for d in page["chart"]["dots"]][-1] == page["latest"]["drifted_share"]
    assert not page["runs"][1]["dataset_drift"]
    cache = ReportCache(size=1)
    report = cache.report(store, MODEL, 2)
    assert "<svg" in report and cache.report(store, MODEL, 2) is report  # drawn once
    with pytest.raises(NotFoundError):
        cache.report(store, MODEL, 99)


def test_jobs_filter_by_view_and_status(store):
    failed = jobs_page(store, None, "failed", trusted=True)["jobs"]
    assert [(j["view"], j["status"]) for j in failed] == [("driver_hourly_stats_fresh", "failed")]
    view = jobs_page(store, "driver_hourly_stats", None, trusted=True)["jobs"]
    assert view and {j["view"] for j in view} == {"driver_hourly_stats"}
    assert all(j["rows"] is not None for j in view if j["status"] == "succeeded")
    with pytest.raises(InputError, match="nope"):
        jobs_page(store, None, "nope", trusted=True)
