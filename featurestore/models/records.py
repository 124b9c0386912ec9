"""What the model registry hands back: ``Model``, ``ModelVersion`` and ``AliasMove``.

They are read-only views of registry objects. The registry keeps three kinds:

- ``model``          name ``churn``: description, tags, owner;
- ``model_version``  name ``churn/3``: everything that made the version (artifact digest,
                     flavor, signature, features, training set, metrics, params, code
                     commit), written once when the artifact is stored; only its
                     ``status`` may later move from ``ready`` to ``archived``;
- ``model_alias``    name ``churn@champion``: the version it points at, the previous one
                     and the reason of its last move. Every move is a new registry
                     version of the alias, so the alias's history is its move log; a
                     deleted alias is a tombstone whose spec says who removed it and why.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from registry import StoredObject

from featurestore.models.signature import Signature

__all__ = ["DEFAULT_ON_MISSING", "ON_MISSING", "AliasMove", "Model", "ModelVersion", "alias_move", "model_record",
           "version_record"]

READY, ARCHIVED = "ready", "archived"

#: What a version does when one of its input features is missing (featurestore/models/inputs.py):
#: refuse the row, pass the null through, or use the input's default from the signature.
ON_MISSING = ("error", "null", "default")
#: The policy of a version registered without one, and of every version recorded before
#: the policy existed: nulls pass through, as in the training set (docs/predict.md).
DEFAULT_ON_MISSING = "null"


@dataclass(frozen=True)
class ModelVersion:
    """One immutable version of a model, with the aliases that point at it now."""

    name: str
    version: int
    status: str
    flavor: str
    artifact: str
    signature: Signature | None
    features: tuple[str, ...]
    feature_service: dict[str, Any] | None
    feature_view_versions: dict[str, int]
    training_dataset: dict[str, Any] | None
    request_fields: tuple[str, ...]
    metrics: dict[str, Any]
    params: dict[str, Any]
    tags: dict[str, str]
    description: str
    code: dict[str, Any] | None
    created_at: datetime
    aliases: tuple[str, ...] = ()
    on_missing: str = DEFAULT_ON_MISSING
    flavor_meta: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def uri(self) -> str:
        """``name/version``: names exactly this version wherever a model is named."""
        return f"{self.name}/{self.version}"

    def to_dict(self) -> dict[str, Any]:
        """The version as JSON (what ``--json`` and the HTTP API show)."""
        return {
            "name": self.name, "version": self.version, "uri": self.uri, "status": self.status,
            "aliases": list(self.aliases), "flavor": self.flavor, "artifact": self.artifact,
            "signature": self.signature.to_dict() if self.signature else None,
            "features": list(self.features), "feature_service": self.feature_service,
            "feature_view_versions": self.feature_view_versions, "training_dataset": self.training_dataset,
            "request_fields": list(self.request_fields), "on_missing": self.on_missing, "metrics": self.metrics, "params": self.params,
            "tags": self.tags, "description": self.description, "code": self.code,
            "created_at": self.created_at.isoformat(),
        }


@dataclass(frozen=True)
class Model:
    """A registered model: its description and where its versions and aliases stand."""

    name: str
    description: str
    tags: dict[str, str]
    owner: str
    created_at: datetime
    latest_version: int | None
    aliases: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "tags": self.tags, "owner": self.owner,
                "created_at": self.created_at.isoformat(), "latest_version": self.latest_version,
                "aliases": self.aliases}


@dataclass(frozen=True)
class AliasMove:
    """One move of an alias: from ``previous`` to ``version`` (None: deleted), when and why."""

    model: str
    alias: str
    version: int | None
    previous: int | None
    reason: str | None
    at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "alias": self.alias, "version": self.version, "previous": self.previous,
                "reason": self.reason, "at": self.at.isoformat()}


def version_record(obj: StoredObject, aliases: tuple[str, ...] = ()) -> ModelVersion:
    spec = obj.spec
    signature = spec.get("signature")
    return ModelVersion(
        name=spec["model"], version=int(obj.name.rsplit("/", 1)[1]), status=spec.get("status", READY),
        flavor=spec["flavor"], artifact=spec["artifact"],
        signature=Signature.from_dict(signature) if signature else None,
        features=tuple(spec.get("features", ())), feature_service=spec.get("feature_service"),
        feature_view_versions=dict(spec.get("feature_view_versions", {})),
        training_dataset=spec.get("training_dataset"), request_fields=tuple(spec.get("request_fields", ())),
        metrics=dict(spec.get("metrics", {})), params=dict(spec.get("params", {})),
        tags=dict(spec.get("tags", {})), description=spec.get("description", ""), code=spec.get("code"),
        created_at=datetime.fromisoformat(spec["created_at"]), aliases=tuple(sorted(aliases)),
        on_missing=spec.get("on_missing", DEFAULT_ON_MISSING),
        flavor_meta=dict(spec.get("flavor_meta", {})),
    )


def model_record(obj: StoredObject, latest_version: int | None, aliases: dict[str, int]) -> Model:
    spec = obj.spec
    return Model(
        name=obj.name, description=spec.get("description", ""), tags=dict(spec.get("tags", {})),
        owner=spec.get("owner", ""), created_at=datetime.fromisoformat(spec["created_at"]),
        latest_version=latest_version, aliases=dict(sorted(aliases.items())),
    )


def alias_move(obj: StoredObject) -> AliasMove:
    spec = obj.spec
    return AliasMove(
        model=spec["model"], alias=spec["alias"], version=None if obj.removed else spec.get("version"),
        previous=spec.get("previous"), reason=spec.get("reason"), at=obj.created_at,
    )
