"""A repo with a model trained on a plain view, an aggregation view and an on-demand view
together, for the prediction tests (and for the HTTP /predict leg of the consistency test).

The example repo (``featurestore init``), plus:
- the on-demand views of docs/on-demand.md's worked example (``trip_features`` takes the
  request fields ``trip_km`` and ``surge``);
- ``trip_stats``, an aggregation view over trip events (``fare_sum_1h``, ``fare_count_1h``),
  and ``per_trip``, an on-demand view over it and the request field ``trip_km``.

``build_world`` applies it, materializes up to ``now``, saves a point-in-time training
set, fits the example's ``DriverModel`` on one feature of each kind and registers it as
``trip_model/1`` (alias ``champion``).
"""

from __future__ import annotations

import random
import sys
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa

from featurestore import FeatureStore
from featurestore.config import load_config
from featurestore.models.records import ModelVersion
from featurestore.offline.files import write_parquet_atomic

from ..transforms.on_demand_repo import ON_DEMAND, repo_with_on_demand

NOW = datetime(2024, 5, 1, 12, tzinfo=timezone.utc)
MODEL = "trip_model"
#: One feature of each kind, in the order the model takes them.
FEATURES = ["driver_hourly_stats:conv_rate", "trip_stats:fare_sum_1h", "trip_features:expected_fare"]
COLUMNS = ["conv_rate", "fare_sum_1h", "expected_fare"]
DRIVERS = [1001, 1002, 1003, 9999]  # 9999 is unknown: every feature of it is missing
TRIP_KM = [3.2, 1.1, 0.0, 2.0]
SURGE = [1.0, 1.5, 2.25, 2.0]

TRIPS = '''

from featurestore import Aggregation

trips_source = FileSource(name="trips_source", path="data/trips.parquet", timestamp_field="event_timestamp")

trip_stats = FeatureView(
    name="trip_stats",
    entities=[driver],
    schema=[Field("driver_id", Int64), Field("fare", Float64)],
    source=trips_source,
    aggregations=[Aggregation("fare", "sum", timedelta(hours=1)), Aggregation("fare", "count", timedelta(hours=1))],
)


@on_demand_feature_view(sources=[trip_stats[["fare_sum_1h", "fare_count_1h"]], trip],
                        schema=[Field("fare_for_trip", Float64)], mode="python")
def per_trip(columns: dict) -> dict:
    rows = zip(columns["fare_sum_1h"], columns["fare_count_1h"], columns["trip_km"])
    return {"fare_for_trip": [None if s is None or not c else s / c * k for s, c, k in rows]}
'''


@dataclass
class World:
    """The applied repo, its store (clock pinned at ``now``) and the registered model."""

    repo: Path
    store: FeatureStore
    now: datetime
    version: ModelVersion
    model: Any  # the fitted DriverModel, in memory

    @property
    def uri(self) -> str:
        return self.version.uri

    def entity_columns(self) -> dict[str, list]:
        """The entities to score at ``now``, column-major with their request fields."""
        return {"driver_id": list(DRIVERS), "trip_km": list(TRIP_KM), "surge": list(SURGE)}

    def entity_df(self, at: datetime | None = None) -> pa.Table:
        """The same entities as a batch entity set at ``at`` (default ``now``)."""
        return pa.table({"driver_id": DRIVERS, "event_timestamp": pa.array([at or self.now] * len(DRIVERS),
                                                                           pa.timestamp("us", tz="UTC")),
                         "trip_km": TRIP_KM, "surge": SURGE})

    def expected(self, at: datetime | None = None) -> list:
        """``model.predict`` on the training pipeline's features for those rows."""
        training = self.store.get_historical_features(self.entity_df(at), FEATURES).to_arrow()
        return self.model.predict(training)


def trip_events(now: datetime, hours: int = 3) -> pa.Table:
    """A trip every 7 minutes per known driver over the last ``hours``, seeded fares."""
    rng = random.Random(11)
    rows = [(d, now - timedelta(minutes=7 * k), round(rng.uniform(3, 40), 2))
            for d in DRIVERS[:3] for k in range(hours * 60 // 7)]
    return pa.table({"driver_id": pa.array([r[0] for r in rows], pa.int64()),
                     "event_timestamp": pa.array([r[1] for r in rows], pa.timestamp("us", tz="UTC")),
                     "fare": pa.array([r[2] for r in rows], pa.float64())})


def write_repo(tmp_path: Path, online: str, project: str, now: datetime = NOW) -> Path:
    repo = repo_with_on_demand(tmp_path, online, project, extra=ON_DEMAND + TRIPS, now=now)
    write_parquet_atomic(trip_events(now), repo / "data" / "trips.parquet")
    return repo


def training_entities(now: datetime) -> pa.Table:
    """Labelled rows over the two hours before ``now`` (request fields included)."""
    rng = random.Random(5)
    rows = [(d, now - timedelta(minutes=m)) for m in range(5, 120, 10) for d in DRIVERS[:3]]
    return pa.table({
        "driver_id": pa.array([d for d, _ in rows], pa.int64()),
        "event_timestamp": pa.array([t for _, t in rows], pa.timestamp("us", tz="UTC")),
        "trip_km": [round(rng.uniform(0.5, 12), 1) for _ in rows],
        "surge": [rng.choice([1.0, 1.25, 1.5, 2.0]) for _ in rows],
        "completed": [i % 2 for i in range(len(rows))],
    })


def build_world(tmp_path: Path, online: str, project: str, now: datetime = NOW, **register: Any) -> World:
    """Write, apply and materialize the repo, train and register ``trip_model/1``."""
    repo = write_repo(tmp_path, online, project, now)
    store = FeatureStore(config=load_config(repo, env={}), clock=lambda: now.timestamp())
    try:
        store.apply()
        store.materialize_incremental(now)
        job = store.get_historical_features(training_entities(now), FEATURES)
        saved = job.save("trip_training")
        model = sys.modules["driver_model"].DriverModel.fit(job.to_arrow(), COLUMNS, "completed", steps=200)
        version = store.models.register(MODEL, model, flavor="python", training_dataset=saved,
                                        output="completed", **register)
        store.models.set_alias(MODEL, "champion", version.version)
    except BaseException:
        store.close()
        raise
    return World(repo, store, now, store.models.get(version.uri), model)
