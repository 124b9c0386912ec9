"""The request and response bodies, as pydantic models, for the OpenAPI docs at ``/docs``.

The routes do not validate with these (see ``serving.body``); they describe the same
shapes, and a test checks the documented examples against the running app.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "ErrorBody",
    "GetOnlineFeaturesRequest",
    "GetOnlineFeaturesResponse",
    "MaterializeIncrementalRequest",
    "MaterializeRequest",
    "MaterializeResponse",
    "PredictRequest",
    "PredictResponse",
    "PushRequest",
    "PushResponse",
    "RegistryObject",
    "WriteToOnlineStoreRequest",
    "WriteToOnlineStoreResponse",
    "request_body",
]


class GetOnlineFeaturesRequest(BaseModel):
    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [{
        "features": ["driver_hourly_stats:conv_rate", "driver_hourly_stats:acc_rate"],
        "entities": {"driver_id": [1001, 1002]},
    }]})

    features: list[str] | None = Field(
        None, description="Feature references 'view:feature'. Give this or feature_service.")
    feature_service: str | None = Field(None, description="A feature service's name, instead of features.")
    entities: dict[str, list[Any]] = Field(description="Join key -> one value per entity row (column-major, as Feast); "
                                           "request fields of on-demand views may be given here too.")
    request: dict[str, list[Any]] | None = Field(
        None, description="Request field -> one value per entity row, for on-demand feature views.")
    full_feature_names: bool = Field(False, description="Name features 'view__feature' instead of 'feature'.")


class _Metadata(BaseModel):
    feature_names: list[str]


class _FeatureResult(BaseModel):
    values: list[Any] = Field(description="One value per entity row; null when the status is not PRESENT.")
    statuses: list[Literal["PRESENT", "NULL_VALUE", "NOT_FOUND", "OUTSIDE_MAX_AGE"]]
    event_timestamps: list[str] = Field(description="RFC 3339, UTC; the epoch where there is none.")


class GetOnlineFeaturesResponse(BaseModel):
    metadata: _Metadata
    results: list[_FeatureResult] = Field(description="One per feature name, join keys first.")


class PushRequest(BaseModel):
    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [{
        "push_source_name": "driver_stats_push",
        "df": {"driver_id": [1001], "event_timestamp": ["2024-05-01T12:00:00Z"], "created": ["2024-05-01T12:00:01Z"],
               "conv_rate": [0.91], "acc_rate": [0.87], "avg_daily_trips": [14]},
        "to": "online",
    }]})

    push_source_name: str
    df: dict[str, list[Any]] = Field(description="Column -> values: every column the source's views declare, "
                                                 "the join keys and the timestamp field (ISO 8601 strings).")
    to: Literal["online", "offline", "online_and_offline"] = "online"


class PushResponse(BaseModel):
    push_source_name: str
    to: str
    rows: int


class WriteToOnlineStoreRequest(BaseModel):
    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [{
        "feature_view_name": "driver_hourly_stats",
        "df": {"driver_id": [1001], "event_timestamp": ["2024-05-01T12:00:00"], "conv_rate": [0.91],
               "acc_rate": [0.87], "avg_daily_trips": [14]},
    }]})

    feature_view_name: str
    df: dict[str, list[Any]] = Field(description="Column -> values: the view's join keys and features and the "
                                                 "event time (the source's timestamp field or 'event_timestamp'); "
                                                 "other columns are ignored.")


class WriteToOnlineStoreResponse(BaseModel):
    feature_view_name: str
    rows: int


class MaterializeRequest(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "start_ts": "2024-04-30T00:00:00Z", "end_ts": "2024-05-01T12:00:00Z", "feature_views": ["driver_hourly_stats"],
    }]})

    start_ts: str | None = Field(None, description="ISO 8601; null: from the beginning.")
    end_ts: str | None = Field(None, description="ISO 8601, or 'now'; needed unless disable_event_timestamp.")
    feature_views: list[str] | None = Field(None, description="Only these views (default: every online view).")
    disable_event_timestamp: bool = Field(False, description="Feast's flag: every row up to now, whatever "
                                                             "start_ts and end_ts say.")


class MaterializeIncrementalRequest(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"end_ts": "now"}]})

    end_ts: str = Field(description="ISO 8601, or 'now'.")
    feature_views: list[str] | None = None


class _ViewMaterialized(BaseModel):
    feature_view: str
    start: str | None
    end: str
    rows: int
    seconds: float


class MaterializeResponse(BaseModel):
    views: list[_ViewMaterialized]


class PredictRequest(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "entities": {"driver_id": [1001, 1002]}, "include_features": False,
    }]})

    entities: dict[str, list[Any]] = Field(description="Join key -> one value per entity row (column-major).")
    request: dict[str, list[Any]] | None = Field(
        None, description="Request field -> one value per entity row: the model's request-time inputs and "
                          "on-demand views' request fields.")
    include_features: bool = Field(False, description="Also answer the model's input columns and their statuses.")


class PredictResponse(BaseModel):
    model: str
    version: int
    variant: str = Field(description="'stable' (rollouts, when they come, name their variants).")
    predictions: list[Any] = Field(description="One value (or list of values) per entity row.")
    request_id: str = Field(description="The X-Request-ID header sent, or one made up; also a response header.")
    features: GetOnlineFeaturesResponse | None = Field(
        None, description="With include_features: the values the model received, with their read statuses.")


class RegistryObject(BaseModel):
    kind: str
    name: str
    version: int
    created_at: str
    spec: dict[str, Any]


class _ErrorDetail(BaseModel):
    type: str = Field(description="The error class, e.g. NotFoundError, InputError, Unauthorized.")
    message: str = Field(description="What is wrong and what to do.")


class ErrorBody(BaseModel):
    error: _ErrorDetail


def request_body(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` documenting ``model`` as the JSON body of a route that reads it itself."""
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": model.model_json_schema()}}}}
