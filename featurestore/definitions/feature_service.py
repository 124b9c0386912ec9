"""Feature services: the named set of features one model consumes."""

from __future__ import annotations

from dataclasses import InitVar, dataclass, field

from featurestore.definitions.entity import _check_name
from featurestore.definitions.feature_view import FeatureView, FeatureViewProjection
from featurestore.definitions.logging_config import LoggingConfig
from featurestore.definitions.on_demand import OnDemandFeatureView
from featurestore.errors import DefinitionError

__all__ = ["FeatureService"]


@dataclass(frozen=True)
class FeatureService:
    """``FeatureService(name, features=[view, other_view[["a", "b"]], on_demand_view])``.

    ``logging`` (Feast's keyword ``logging_config`` is accepted too) asks the server to
    log the service's reads (featurestore/definitions/logging_config.py)."""

    name: str
    features: tuple[FeatureViewProjection, ...]
    description: str = ""
    tags: dict[str, str] = field(default_factory=dict, hash=False)
    owner: str = ""
    logging: LoggingConfig | None = None
    logging_config: InitVar[LoggingConfig | None] = None

    def __post_init__(self, logging_config: LoggingConfig | None) -> None:
        _check_name("feature service", self.name)
        if logging_config is not None:
            if self.logging is not None and self.logging is not logging_config:  # replace() passes both
                raise DefinitionError(f"feature service {self.name!r}: give logging or logging_config, not both")
            object.__setattr__(self, "logging", logging_config)
        if self.logging is not None and not isinstance(self.logging, LoggingConfig):
            raise DefinitionError(
                f"feature service {self.name!r}: logging must be a LoggingConfig(destination=..., sample_rate=...), "
                f"not {type(self.logging).__name__}"
            )
        object.__setattr__(self, "logging_config", self.logging)  # readable under Feast's name too
        projections = []
        for item in self.features or ():
            if isinstance(item, (FeatureView, OnDemandFeatureView)):
                item = FeatureViewProjection(item, item.feature_names)
            if not isinstance(item, FeatureViewProjection):
                raise DefinitionError(
                    f"feature service {self.name!r}: features must be feature views, on-demand feature views or view[[...]] "
                    f"projections, not {type(item).__name__}"
                )
            projections.append(item)
        if not projections:
            raise DefinitionError(f"feature service {self.name!r} lists no features")
        names = [p.name for p in projections]
        if len(set(names)) != len(names):
            raise DefinitionError(f"feature service {self.name!r} lists a feature view twice: {names}")
        object.__setattr__(self, "features", tuple(projections))

    @property
    def feature_refs(self) -> list[str]:
        """``["view:feature", ...]`` in declaration order."""
        return [f"{p.name}:{f}" for p in self.features for f in p.features]
