"""Driver features for a ride-hailing ranking model.

Run `featurestore apply` after editing this file; `featurestore plan` shows what changes.
"""

from datetime import timedelta

from featurestore import Entity, FeatureService, FeatureView, Field, FileSource, PushSource
from featurestore.types import Float32, Int64

driver = Entity(name="driver", join_keys=["driver_id"], description="A driver, by id")

driver_stats_source = FileSource(
    name="driver_hourly_stats_source",
    path="data/driver_stats.parquet",
    timestamp_field="event_timestamp",
    created_timestamp_field="created",
)

driver_hourly_stats = FeatureView(
    name="driver_hourly_stats",
    entities=[driver],
    ttl=timedelta(days=1),
    schema=[
        Field(name="conv_rate", dtype=Float32, description="Share of offers accepted"),
        Field(name="acc_rate", dtype=Float32, description="Share of trips completed"),
        Field(name="avg_daily_trips", dtype=Int64),
    ],
    source=driver_stats_source,
    online=True,
    tags={"team": "driver_performance"},
)

# Fresh values pushed by the trip service land here (and, optionally, in the offline store).
driver_stats_push = PushSource(name="driver_stats_push", batch_source=driver_stats_source)

driver_hourly_stats_fresh = FeatureView(
    name="driver_hourly_stats_fresh",
    entities=[driver],
    ttl=timedelta(days=1),
    schema=[
        Field(name="conv_rate", dtype=Float32),
        Field(name="acc_rate", dtype=Float32),
        Field(name="avg_daily_trips", dtype=Int64),
    ],
    source=driver_stats_push,
)

driver_activity_v1 = FeatureService(
    name="driver_activity_v1",
    features=[driver_hourly_stats[["conv_rate", "acc_rate"]], driver_hourly_stats_fresh[["avg_daily_trips"]]],
)
