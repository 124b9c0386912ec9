"""Fixtures for the monitor tests: the example repo with ``driver_model/1`` registered from
a saved training set (so it has a profile), and served rows drawn like or unlike it."""

from __future__ import annotations

import sys
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from featurestore import FeatureStore
from featurestore.scaffold import init_repo
from monitoring import run_monitor

from ..models.registry.conftest import FEATURES, NOW, SERVICE, labelled_events

__all__ = ["FEATURES", "NOW", "SERVICE", "served_rows", "write_log"]


@pytest.fixture(scope="module")
def monitored(tmp_path_factory):
    """(store opened with the monitor, training table, loaded model of driver_model/1)."""
    repo = init_repo(tmp_path_factory.mktemp("monitor") / "repo", project=f"test_{uuid.uuid4().hex[:10]}", now=NOW)
    with FeatureStore(repo_path=repo, monitor=run_monitor) as store:
        store.apply()
        job = store.get_historical_features(labelled_events(48), SERVICE)
        saved = job.save("driver_training")
        table = job.to_arrow()
        model = sys.modules["driver_model"].DriverModel.fit(table, FEATURES, "trip_completed", steps=50)
        version = store.models.register("driver_model", model, flavor="python", features=SERVICE,
                                        training_dataset=saved, output="trip_completed")
        store.models.set_alias("driver_model", "champion", version.version)
        yield store, table, store.models.load("driver_model/1")


def served_rows(store_table: pa.Table, model, n: int, seed: int, shift: float = 0.0, version: int = 1) -> pa.Table:
    """``n`` rows resampled from the training rows, keys included (``shift``: conv_rate and
    acc_rate move by that many standard deviations), with the model's predictions on them."""
    rng = np.random.default_rng(seed)
    rows = store_table.take(pa.array(rng.integers(0, store_table.num_rows, n)))
    columns = {}
    for name in FEATURES:
        values = rows.column(name).to_numpy(zero_copy_only=False).astype(float)
        if shift and name != "avg_daily_trips":
            values = values + shift * np.nanstd(values)
        columns[name] = pa.array(values).cast(store_table.schema.field(name).type, safe=False)
    table = pa.table(columns)
    return table.append_column("prediction", pa.array(model.predict(table), pa.float64())) \
        .append_column("version", pa.array([version] * n, pa.int64())) \
        .append_column("driver_id", rows.column("driver_id"))


def write_log(store, rows: pa.Table, at: datetime, model: str = "driver_model") -> None:
    """``rows`` as one serving log file of ``model`` (docs/monitoring.md's layout), logged
    one second apart from ``at``."""
    import pyarrow.parquet as pq

    n = rows.num_rows
    times = pa.array([at + timedelta(seconds=i) for i in range(n)], pa.timestamp("us", tz="UTC"))
    meta = {"log_time": times, "request_id": pa.array([uuid.uuid4().hex for _ in range(n)]),
            "model": pa.array([model] * n), "variant": pa.array(["stable"] * n)}
    logged = {name: rows.column(name) for name in rows.column_names}
    for name in FEATURES:  # each feature's status and event time, as the server logs them
        logged[f"{name}__status"] = pc.if_else(pc.is_null(rows.column(name)), "NULL_VALUE", "PRESENT")
        logged[f"{name}__event_timestamp"] = times
    table = pa.table({**meta, **logged})
    folder = Path(store.config.offline_store) / "_serving_logs" / model / f"date={at:%Y-%m-%d}"
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, folder / f"{uuid.uuid4().hex}.parquet")
