"""The example repo plus on-demand views over its driver stats and a request source."""

from __future__ import annotations

from datetime import datetime, timezone

from featurestore.scaffold import init_repo

NOW = datetime(2024, 5, 1, 12, tzinfo=timezone.utc)

ON_DEMAND = '''

# -- request-time features (appended by the tests) --
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from featurestore import RequestSource, on_demand_feature_view
from featurestore.types import Float64

trip = RequestSource(name="trip", schema=[Field("trip_km", Float64), Field("surge", Float64)])


@on_demand_feature_view(
    sources=[driver_hourly_stats[["conv_rate", "avg_daily_trips"]], trip],
    schema=[Field("expected_fare", Float64), Field("busy", Int64)],
)
def trip_features(inputs: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame()
    out["expected_fare"] = inputs["trip_km"] * inputs["surge"] * (1 + inputs["conv_rate"])
    out["busy"] = (inputs["avg_daily_trips"] > 100).astype("int64")
    return out


@on_demand_feature_view(sources=[driver_hourly_stats[["acc_rate"]], trip],
                        schema=[Field("km_acc", Float64)], mode="arrow")
def trip_arrow(table: pa.Table) -> pa.Table:
    return pa.table({"km_acc": pc.multiply(table["trip_km"], table["acc_rate"].cast(pa.float64()))})


@on_demand_feature_view(sources=[driver_hourly_stats[["avg_daily_trips"]]],
                        schema=[Field("trips_x2", Int64)], mode="python")
def doubled(columns: dict) -> dict:
    return {"trips_x2": [None if v is None else 2 * v for v in columns["avg_daily_trips"]]}


trip_v1 = FeatureService(name="trip_v1", features=[driver_hourly_stats[["acc_rate"]], trip_features])
'''


def repo_with_on_demand(tmp_path, online: str, project: str, extra: str = ON_DEMAND):
    repo = init_repo(tmp_path / "repo", project=project, now=NOW)
    defs = repo / "features" / "driver_stats.py"
    defs.write_text(defs.read_text() + extra)
    (repo / "featurestore.yaml").write_text(
        f"project: {project}\nregistry: data/registry.db\noffline_store: data/offline\nonline_store:\n{online}")
    return repo


