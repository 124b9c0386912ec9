"""Feature services: the named set of features one model consumes."""

from __future__ import annotations

from dataclasses import dataclass, field

from featurestore.definitions.entity import _check_name
from featurestore.definitions.feature_view import FeatureView, FeatureViewProjection
from featurestore.definitions.on_demand import OnDemandFeatureView
from featurestore.errors import DefinitionError

__all__ = ["FeatureService"]


@dataclass(frozen=True)
class FeatureService:
    """``FeatureService(name, features=[view, other_view[["a", "b"]], on_demand_view])``."""

    name: str
    features: tuple[FeatureViewProjection, ...]
    description: str = ""
    tags: dict[str, str] = field(default_factory=dict, hash=False)
    owner: str = ""

    def __post_init__(self) -> None:
        _check_name("feature service", self.name)
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
