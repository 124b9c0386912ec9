"""Fetch a point-in-time-correct training set, then read the same features online.

    python train.py
"""

from datetime import datetime, timedelta, timezone
from pathlib import Path

import polars as pl

from featurestore import FeatureStore

FEATURES = [
    "driver_hourly_stats:conv_rate",
    "driver_hourly_stats:acc_rate",
    "driver_hourly_stats:avg_daily_trips",
]


def main() -> None:
    store = FeatureStore(repo_path=Path(__file__).parent)

    # Labelled events: which driver, when, and what happened. Each row gets the feature
    # values as they were at its own timestamp, never later ones.
    now = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
    entity_df = pl.DataFrame({
        "driver_id": [1001, 1002, 1003, 1004, 1001],
        "event_timestamp": [now - timedelta(hours=h) for h in (1, 5, 30, 2, 72)],
        "trip_completed": [1, 0, 1, 1, 0],
    })
    training_df = store.get_historical_features(entity_df, FEATURES).to_polars()
    print("Training set:")
    print(training_df)

    # Latest values for serving (run `featurestore materialize-incremental now` first).
    online = store.get_online_features(FEATURES, [{"driver_id": 1001}, {"driver_id": 1002}])
    print("Online features:")
    print(online.to_polars())


if __name__ == "__main__":
    main()
