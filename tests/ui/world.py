"""The example repo after a life: applied twice, materialized (and one failed run), trained,
registered, drifted, and a rollout rolled back. The UI tests and bench/ui.py look at it.

``build_world(folder)`` writes the repo and returns a ``World``; predictions are served
afterwards through a real server (``serve_predictions``), which logs them as the serving
log of ``driver_model``.
"""

from __future__ import annotations

import importlib.util
import sys
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from featurestore import FeatureStore
from featurestore.scaffold import init_repo
from monitoring import run_monitor

from ..monitoring.conftest import FEATURES, served_rows, write_log
from ..transforms.on_demand_repo import ON_DEMAND

__all__ = ["MODEL", "ODFV", "World", "build_world"]

MODEL = "driver_model"
ODFV = "driver_rates"  # docs/on-demand.md's worked example, appended to the definitions

# A windowed aggregation over the pushed stats: the Features page shows its functions.
AGGREGATION = '''

from featurestore import Aggregation

driver_rate_windows = FeatureView(
    name="driver_rate_windows",
    entities=[driver],
    source=driver_stats_push,
    schema=[Field(name="driver_id", dtype=Int64), Field(name="conv_rate", dtype=Float32)],
    aggregations=[Aggregation("conv_rate", "mean", timedelta(hours=6)),
                  Aggregation("conv_rate", "max", timedelta(days=1))],
)
'''


@dataclass(frozen=True)
class World:
    repo: Path
    project: str
    now: datetime


def build_world(folder: Path) -> World:
    now = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
    project = f"test_{uuid.uuid4().hex[:10]}"
    repo = init_repo(folder / "repo", project=project, now=now)
    definitions = repo / "features" / "driver_stats.py"
    definitions.write_text(definitions.read_text() + ON_DEMAND + AGGREGATION)
    with FeatureStore(repo_path=repo) as store:
        store.apply()
        # A second apply with a longer ttl and a new tag: every view page has a diff to show.
        definitions.write_text(definitions.read_text().replace(
            'ttl=timedelta(days=1),\n    schema=[\n        Field(name="conv_rate", dtype=Float32, description',
            'ttl=timedelta(days=2),\n    schema=[\n        Field(name="conv_rate", dtype=Float32, description', 1)
            .replace('tags={"team": "driver_performance"}', 'tags={"team": "driver_performance", "tier": "gold"}'))
        store.apply()
        store.materialize_incremental(now)
        _failed_job(store, now)
        version, table = _train(repo, store)
        model = store.models.load(version.uri)
        refit = sys.modules["driver_model"].DriverModel.fit(table, FEATURES, "trip_completed", steps=20)
        second = store.models.register(MODEL, refit, flavor="python",
                                       features="driver_activity_v1", training_dataset="driver_training",
                                       output="trip_completed", metrics={"train_accuracy": 0.61},
                                       description="a candidate that did not make it")
        store.models.set_alias(MODEL, "challenger", second.version, reason="candidate for the canary")
        _drift(store, table, model, now)
        _rolled_back(store, second.version)
    return World(repo, project, now)


def _train(repo: Path, store: FeatureStore):
    """The example repo's train.py: driver_model/1, champion (imported the way python runs it)."""
    spec = importlib.util.spec_from_file_location(f"train_{uuid.uuid4().hex[:8]}", repo / "train.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.train(store)


def _failed_job(store: FeatureStore, now: datetime) -> None:
    jobs = store.registry.jobs
    run = jobs.start(store.project, "driver_hourly_stats_fresh", "manual", now - timedelta(hours=2), now, "ui-test")
    jobs.finish(store.project, run.id, "failed", error="the push source's batch file is missing")


def _drift(store: FeatureStore, table, model, now: datetime) -> None:
    """Two monitor runs: the first like training, the second shifted (drift)."""
    for hours, seed, shift in ((3, 1, 0.0), (2, 2, 2.5)):
        start = now - timedelta(hours=hours)
        rows = served_rows(table, model, 300, seed, shift=shift)
        write_log(store, rows, start, MODEL)
        run_monitor(store, MODEL, start, start + timedelta(hours=1))


def _rolled_back(store: FeatureStore, candidate: int) -> None:
    rollouts = store.models.rollouts
    rollouts.start(MODEL, candidate, step_weight=10, max_weight=50, min_requests=10, reason="new training run")
    rollouts.set_weight(MODEL, 20, reason="checks passed", measured={"success_rate": 1.0, "js_distance": 0.04,
                                                                    "requests": 240})
    rollouts.record(MODEL, "failed_check", {"success_rate": 0.97, "js_distance": 0.21, "requests": 310},
                    failed=True, reason="js_distance 0.21 above 0.1")
    rollouts.rollback(MODEL, reason="js_distance above its limit twice",
                      failure={"check": "js_distance", "limit": 0.1, "value": 0.23},
                      measured={"success_rate": 0.98, "js_distance": 0.23, "requests": 420})
