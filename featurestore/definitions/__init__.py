"""The definition DSL: frozen, data-only objects a user builds in ``features/*.py``."""

from featurestore.definitions.entity import Entity, Field
from featurestore.definitions.feature_service import FeatureService
from featurestore.definitions.feature_view import Aggregation, FeatureView, FeatureViewProjection
from featurestore.definitions.logging_config import FileLoggingDestination, LoggingConfig
from featurestore.definitions.on_demand import OnDemandFeatureView, RequestSource, on_demand_feature_view
from featurestore.definitions.project import Project
from featurestore.definitions.sources import FileSource, PushSource

__all__ = [
    "Aggregation",
    "Entity",
    "FeatureService",
    "FeatureView",
    "FeatureViewProjection",
    "Field",
    "FileLoggingDestination",
    "FileSource",
    "LoggingConfig",
    "OnDemandFeatureView",
    "Project",
    "PushSource",
    "RequestSource",
    "on_demand_feature_view",
]
