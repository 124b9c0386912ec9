"""``RemoteFeatureStore.models``: the server's model registry, read-only.

``list``, ``get_model``, ``versions``, ``get`` and ``search`` return the same ``Model`` and
``ModelVersion`` records as ``store.models``; registering and moving aliases stay on the
server's side (``featurestore models ...`` there, or ``PUT /models/...`` over HTTP).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from featurestore.models.records import Model, ModelVersion
from featurestore.models.signature import Signature

if TYPE_CHECKING:
    from featurestore.remote.connection import Connection

__all__ = ["RemoteModels"]


class RemoteModels:
    def __init__(self, connection: Connection):
        self._connection = connection

    def list(self) -> list[Model]:
        return [_model(m) for m in self._call("list")]

    def get_model(self, name: str) -> Model:
        return _model(self._call("get_model", name=name))

    def versions(self, name: str) -> list[ModelVersion]:
        return [_version(v) for v in self._call("versions", name=name)]

    def get(self, uri: str) -> ModelVersion:
        """The version ``uri`` names (``name/3``, ``name@alias`` or ``name``)."""
        return _version(self._call("get", uri=str(uri)))

    def search(self, name: str | None = None, tag: str | dict | None = None, alias: str | None = None
               ) -> list[ModelVersion]:
        return [_version(v) for v in self._call("search", name=name, tag=tag, alias=alias)]

    def _call(self, what: str, **fields: Any) -> Any:
        return self._connection.action("models", what=what, **fields)


def _model(d: dict) -> Model:
    return Model(name=d["name"], description=d["description"], tags=d["tags"], owner=d["owner"],
                 created_at=datetime.fromisoformat(d["created_at"]), latest_version=d["latest_version"],
                 aliases=d["aliases"])


def _version(d: dict) -> ModelVersion:
    return ModelVersion(
        name=d["name"], version=d["version"], status=d["status"], flavor=d["flavor"], artifact=d["artifact"],
        signature=Signature.from_dict(d["signature"]) if d.get("signature") else None,
        features=tuple(d["features"]), feature_service=d["feature_service"],
        feature_view_versions=d["feature_view_versions"], training_dataset=d["training_dataset"],
        request_fields=tuple(d["request_fields"]), metrics=d["metrics"], params=d["params"], tags=d["tags"],
        description=d["description"], code=d["code"], created_at=datetime.fromisoformat(d["created_at"]),
        aliases=tuple(d["aliases"]), on_missing=d["on_missing"],
    )
