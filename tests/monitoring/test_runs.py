"""Monitor runs: the reference profile stored at registration, store.monitor's result,
the runs kept in the registry with their window and versions."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from featurestore import FeatureStore
from featurestore.errors import ConfigError, InputError
from monitoring import run_monitor
from monitoring.runs import history, latest

from .conftest import FEATURES, NOW, served_rows


def test_registration_stores_a_profile_of_each_input_and_of_the_prediction(monitored):
    store, table, model = monitored
    profile = store.models.profile("driver_model/1")
    assert profile["order"] == [*FEATURES, "prediction"] and set(profile["columns"]) == set(profile["order"])
    conv = profile["columns"]["conv_rate"]
    values = [v for v in table.column("conv_rate").to_pylist() if v is not None]
    assert conv["rows"] == table.num_rows and conv["min"] == min(values) and conv["max"] == max(values)
    assert sum(conv["histogram"]["counts"]) == len(values) and sorted(conv["sample"]) == sorted(values)
    prediction = profile["columns"]["prediction"]
    assert prediction["rows"] == table.num_rows
    assert prediction["max"] == max(model.predict(table))
    # Content-addressed beside the artifact: the version records its digest.
    digest = store.registry.get(store.project, "model_version", "driver_model/1").spec["profile"]
    assert digest.startswith("sha256:") and json.loads(
        (store.models.artifacts.fetch(digest, label="t") / "profile.json").read_text()) == profile


def test_store_monitor_judges_served_rows_and_keeps_the_run(monitored):
    store, table, model = monitored
    same = run_monitor(store, "driver_model", NOW - timedelta(hours=1), NOW, rows=served_rows(table, model, 300, 1))
    moved = run_monitor(store, "driver_model", NOW, NOW + timedelta(hours=1),
                        rows=served_rows(table, model, 300, 2, shift=2.0))
    assert [d["feature"] for d in moved.drift] == [*FEATURES, "prediction"]
    assert {d["feature"]: d["drifted"] for d in moved.drift} == {
        "conv_rate": True, "acc_rate": True, "avg_daily_trips": False, "prediction": True}
    assert moved.dataset_drift and not same.dataset_drift
    assert not any(d["drifted"] for d in same.drift)
    for entry in moved.drift:
        assert {"feature", "method", "statistic", "threshold", "drifted"} <= set(entry)
    assert (moved.model, moved.version, moved.rows, moved.versions_seen) == ("driver_model", 1, 300, {"1": 300})
    runs = history(store, "driver_model")
    assert [r.run for r in runs[:2]] == [moved.run, same.run] and runs[0].to_dict() == moved.to_dict()
    assert runs[0].start == NOW and runs[0].end == NOW + timedelta(hours=1)
    assert latest(store)["driver_model"].run == moved.run


def test_rows_of_other_versions_are_left_out_and_too_few_rows_are_not_judged(monitored):
    store, table, model = monitored
    rows = served_rows(table, model, 50, 3)
    other = served_rows(table, model, 40, 4, version=2)
    import pyarrow as pa

    result = run_monitor(store, "driver_model/1", NOW, NOW + timedelta(hours=1), rows=pa.concat_tables([rows, other]),
                         save=False)
    assert result.rows == 50 and result.versions_seen == {"1": 50, "2": 40}
    assert result.status == "not_enough_data" and not result.dataset_drift
    assert {d["status"] for d in result.drift} == {"not_enough_data"}


def test_failed_requests_are_not_judged(monitored):
    """A request the model failed is logged with status model_error and a null prediction:
    it must neither count as a served row nor make the prediction's null rate jump."""
    import pyarrow as pa

    store, table, model = monitored
    answered = served_rows(table, model, 300, 6)
    answered = answered.append_column("status", pa.array(["ok"] * answered.num_rows))
    failed = served_rows(table, model, 200, 7)
    failed = failed.set_column(failed.schema.get_field_index("prediction"), "prediction",
                               pa.nulls(failed.num_rows, failed.schema.field("prediction").type))
    failed = failed.append_column("status", pa.array(["model_error"] * failed.num_rows))
    result = run_monitor(store, "driver_model", NOW, NOW + timedelta(hours=1),
                         rows=pa.concat_tables([answered, failed]), save=False)
    assert result.rows == 300 and not result.dataset_drift
    assert not {d["feature"]: d["drifted"] for d in result.drift}["prediction"]


def test_bad_requests_name_what_is_wrong(monitored):
    store, table, model = monitored
    with pytest.raises(InputError, match="must be before"):
        run_monitor(store, "driver_model", NOW, NOW - timedelta(hours=1), rows=served_rows(table, model, 10, 5))
    with pytest.raises(Exception, match="nosuch"):
        run_monitor(store, "nosuch", rows=served_rows(table, model, 10, 5))
    with FeatureStore(repo_path=store.repo_path) as plain:
        with pytest.raises(ConfigError, match="monitor=monitoring.run_monitor"):
            plain.monitor("driver_model")
