"""Fixtures for the model registry tests: the example repo, applied, with a saved
training set and the example's numpy model fitted on it."""

from __future__ import annotations

import sys
import uuid
from datetime import datetime, timedelta, timezone

import polars as pl
import pytest

from featurestore import FeatureStore
from featurestore.scaffold import init_repo

NOW = datetime(2024, 5, 1, 12, tzinfo=timezone.utc)
SERVICE = "driver_activity_v1"
FEATURES = ["conv_rate", "acc_rate", "avg_daily_trips"]


def labelled_events(hours: int = 24) -> pl.DataFrame:
    rows = [(d, NOW - timedelta(hours=h)) for h in range(hours) for d in (1001, 1002, 1003, 1004, 1005)]
    return pl.DataFrame({
        "driver_id": [d for d, _ in rows],
        "event_timestamp": [t for _, t in rows],
        "trip_completed": [(d + i) % 2 for i, (d, _) in enumerate(rows)],
    })


@pytest.fixture
def repo(tmp_path):
    return init_repo(tmp_path / "repo", project=f"test_{uuid.uuid4().hex[:10]}", now=NOW)


@pytest.fixture
def store(repo):
    with FeatureStore(repo_path=repo) as s:
        s.apply()
        yield s


@pytest.fixture
def trained(store):
    """(training table, saved dataset record, fitted DriverModel) on the example service."""
    job = store.get_historical_features(labelled_events(), SERVICE)
    saved = job.save("driver_training")
    table = job.to_arrow()
    # The example's model class, as `apply` imported it from the repo.
    model = sys.modules["driver_model"].DriverModel.fit(table, FEATURES, "trip_completed", steps=50)
    return table, saved, model


@pytest.fixture
def registered(store, trained):
    """driver_model/1 registered from the training set, with `champion` on it."""
    table, saved, model = trained
    version = store.models.register("driver_model", model, flavor="python", features=SERVICE,
                                    training_dataset=saved, output="trip_completed",
                                    metrics={"auc": 0.71}, params={"steps": 50}, tags={"team": "rides"})
    store.models.set_alias("driver_model", "champion", version.version, reason="first")
    return version


@pytest.fixture
def two_versions(store, trained, registered):
    """driver_model/1 (champion) and driver_model/2 (a candidate for a rollout)."""
    _, saved, model = trained
    store.models.register("driver_model", model, flavor="python", features=SERVICE, training_dataset=saved,
                          output="trip_completed")
    return store
