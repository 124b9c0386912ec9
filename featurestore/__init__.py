"""featurestore: feature definitions in Python, point-in-time training sets from Parquet
via DuckDB, and low-latency online features from Redis or SQLite.

    from featurestore import Entity, FeatureView, Field, FileSource, FeatureStore
    from featurestore.types import Float32, Int64
"""

from featurestore.definitions import (
    Aggregation,
    Entity,
    FeatureService,
    FeatureView,
    FeatureViewProjection,
    Field,
    FileLoggingDestination,
    FileSource,
    LoggingConfig,
    OnDemandFeatureView,
    Project,
    PushSource,
    RequestSource,
    on_demand_feature_view,
)
from featurestore.errors import FeatureStoreError
from featurestore.online.read import FieldStatus, OnlineResponse
from featurestore.push import PushMode
from featurestore.retrieval import RetrievalJob
from featurestore.store import FeatureStore

__version__ = "0.1.0"


def __getattr__(name: str):
    # A Feast name this store does not have fails naming it as unsupported, with what to do.
    from featurestore.feast_names import UNSUPPORTED, unsupported

    raise unsupported(__name__, name, UNSUPPORTED)

__all__ = [
    "Aggregation",
    "Entity",
    "FeatureService",
    "FeatureStore",
    "FeatureStoreError",
    "FeatureView",
    "FeatureViewProjection",
    "Field",
    "FieldStatus",
    "FileLoggingDestination",
    "FileSource",
    "LoggingConfig",
    "OnDemandFeatureView",
    "OnlineResponse",
    "Project",
    "PushMode",
    "PushSource",
    "RequestSource",
    "RetrievalJob",
    "__version__",
    "on_demand_feature_view",
]
