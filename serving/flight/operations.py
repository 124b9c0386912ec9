"""What the Flight server does for ``RemoteFeatureStore``'s commands (featurestore/remote/wire.py).

Each function takes the store and the decoded command (and the uploaded rows, for the
operations that have them) and returns Arrow or JSON; ``server.py`` moves them over the
wire, holds engine slots and checks keys. The store does the work exactly as it does for a
local caller, so a remote answer is the local one.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from featurestore.errors import InputError
from featurestore.remote.answers import online_to_arrow, prediction_to_arrow
from featurestore.retrieval import RetrievalJob
from featurestore.serialization import contents_to_specs
from featurestore.store import FeatureStore

__all__ = ["action", "historical_job", "online_features", "predict_batch", "predict_online", "push", "save_dataset",
           "saved_dataset_rows"]


def historical_job(store: FeatureStore, command: dict, entities: pa.Table) -> RetrievalJob:
    """The training-set job a ``get_historical_features`` command asks for (run when read)."""
    entity_df: Any = command["entity_sql"] if command.get("entity_sql") else entities
    return store.get_historical_features(
        entity_df, _features(command), bool(command.get("full_feature_names", False)),
        timestamp_field=str(command.get("timestamp_field") or "event_timestamp"),
        known_at_timestamp=bool(command.get("known_at_timestamp", False)),
    )


def predict_batch(store: FeatureStore, command: dict, entities: pa.Table) -> pa.Table:
    """``store.predict``: a pickled model is not loaded here, as ``/predict`` does not."""
    options = {"timestamp_field": str(command.get("timestamp_field") or "event_timestamp"),
               "prediction_column": str(command.get("prediction_column") or "prediction")}
    if command.get("batch_rows"):
        options["batch_rows"] = int(command["batch_rows"])
    return store.predict(_text(command, "model"), entities, **options)


def online_features(store: FeatureStore, command: dict, entities: pa.Table) -> pa.Table:
    response = store.get_online_features(_features(command), entities.to_pydict(),
                                         bool(command.get("full_feature_names", False)))
    return online_to_arrow(response)


def predict_online(store: FeatureStore, command: dict, entities: pa.Table) -> pa.Table:
    request = command.get("request")
    if request is not None and not isinstance(request, dict):
        raise InputError("predict_online: 'request' must map request field names to lists of values")
    return prediction_to_arrow(store.predict_online(_text(command, "model"), entities.to_pydict(), request))


def push(store: FeatureStore, command: dict, rows: pa.Table) -> dict:
    result = store.push(_text(command, "push_source"), rows, to=str(command.get("to") or "online"))
    return {"rows": result.rows, "late": result.late}


def save_dataset(store: FeatureStore, command: dict, entities: pa.Table) -> dict:
    return historical_job(store, command, entities).save(_text(command, "name"))


def saved_dataset_rows(store: FeatureStore, command: dict) -> pa.Table:
    """The rows of a saved dataset version, checked against its sha256 as a local read is."""
    return store.get_saved_dataset(_text(command, "name"), command.get("version")).to_arrow()


def action(store: FeatureStore, command: dict) -> Any:
    """The small JSON answers: definitions, saved datasets, models."""
    op = command.get("op")
    if op == "ping":
        return {"project": store.project}
    if op == "list":
        return {"project": store.project,
                "definitions": [{"kind": s.kind, "name": s.name, "spec": s.spec} for s in contents_to_specs(store.contents)],
                "saved_datasets": store.list_saved_datasets()}
    if op == "saved_dataset":
        return store.get_saved_dataset(_text(command, "name"), command.get("version")).to_dict()
    if op == "models":
        return _models(store, command)
    raise InputError(f"unknown Flight action {op!r}; known: ping, list, saved_dataset, models")


def _models(store: FeatureStore, command: dict) -> Any:
    what, models = command.get("what"), store.models
    if what == "list":
        return [m.to_dict() for m in models.list()]
    if what == "get_model":
        return models.get_model(_text(command, "name")).to_dict()
    if what == "versions":
        return [v.to_dict() for v in models.versions(_text(command, "name"))]
    if what == "get":
        return models.get(_text(command, "uri")).to_dict()
    if what == "search":
        return [v.to_dict() for v in models.search(command.get("name"), command.get("tag"), command.get("alias"))]
    raise InputError(f"unknown models request {what!r}; known: list, get_model, versions, get, search")


def _features(command: dict) -> Any:
    service, features = command.get("feature_service"), command.get("features")
    if service:
        return str(service)
    if isinstance(features, list) and all(isinstance(f, str) for f in features):
        return features
    raise InputError("the command names no features: send 'features' (a list of 'view:feature') or "
                     "'feature_service' (a name)")


def _text(command: dict, key: str) -> str:
    value = command.get(key)
    if not isinstance(value, str) or not value:
        raise InputError(f"the {command.get('op')!r} command needs {key!r} (a non-empty string)")
    return value
