"""Train the example model on a point-in-time-correct training set, register it, serve it.

    python train.py

Saves the training set (``driver_training``), registers the model as the next version of
``driver_model`` with that lineage, points its ``champion`` alias at it, then scores the
online features of two drivers with the champion.
"""

from datetime import timedelta
from pathlib import Path

import polars as pl

from driver_model import DriverModel
from featurestore import FeatureStore

HERE = Path(__file__).parent
SERVICE = "driver_activity_v1"  # conv_rate, acc_rate, avg_daily_trips (features/driver_stats.py)
FEATURES = ["conv_rate", "acc_rate", "avg_daily_trips"]
LABEL = "trip_completed"


def labelled_events() -> pl.DataFrame:
    """Labelled events: which driver, when, and whether the trip was completed.

    The demo derives the label from the stats of the hour (a real repo reads it from its
    trips table); each row gets the feature values as they were at its own time.
    """
    stats = pl.read_parquet(HERE / "data" / "driver_stats.parquet")
    since = stats["event_timestamp"].max() - timedelta(hours=48)
    return stats.filter(pl.col("event_timestamp") > since).select(
        "driver_id",
        "event_timestamp",
        ((pl.col("conv_rate") + pl.col("acc_rate")) > 1.0).cast(pl.Int64).alias(LABEL),
    )


def train(store: FeatureStore):
    """Fit, save the training set, register with lineage and make the new version champion.

    Returns the registered version and the training set."""
    job = store.get_historical_features(labelled_events(), SERVICE)
    saved = job.save("driver_training")  # the version the model will point at
    table = job.to_arrow()
    model = DriverModel.fit(table, FEATURES, LABEL)
    labels = table.column(LABEL).to_pylist()
    accuracy = sum((p > 0.5) == bool(y) for p, y in zip(model.predict(table), labels)) / len(labels)
    version = store.models.register(
        "driver_model", model, flavor="python", features=SERVICE, training_dataset=saved,
        output=LABEL, metrics={"train_accuracy": round(accuracy, 4)}, params={"steps": 500, "learning_rate": 0.5},
        description="P(trip completed) from driver activity", tags={"team": "driver_performance"},
    )
    store.models.set_alias("driver_model", "champion", version.version, reason="trained by train.py")
    return version, table


def main() -> None:
    store = FeatureStore(repo_path=HERE)
    version, table = train(store)
    print("Training set:")
    print(pl.from_arrow(table))
    print(f"Registered {version.uri} (champion), train accuracy {version.metrics['train_accuracy']:.2f}")

    # Serving: the latest values online (run `featurestore materialize-incremental now`
    # first), scored by whichever version `champion` points at now.
    online = store.get_online_features(SERVICE, [{"driver_id": 1001}, {"driver_id": 1002}]).to_arrow()
    print("Online features:")
    print(pl.from_arrow(online))
    champion = store.models.load("driver_model@champion")
    print("P(trip completed):", champion.predict(online))


if __name__ == "__main__":
    main()
