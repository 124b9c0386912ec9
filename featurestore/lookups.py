"""``list_*`` and ``get_*`` of the registered definitions, for every store that has them.

``FeatureStore`` and ``RemoteFeatureStore`` both answer them from ``self.contents`` (the
definitions as last read, locally or from a server), so the two keep the same names,
return types and errors.
"""

from __future__ import annotations

from featurestore.definitions import Entity, FeatureService, FeatureView
from featurestore.errors import NotFoundError
from featurestore.repo import RepoContents

__all__ = ["DefinitionLookups"]


class DefinitionLookups:
    """Mixed into a store class that has a ``contents`` attribute or property."""

    contents: RepoContents

    def list_entities(self) -> list[Entity]:
        return list(self.contents.entities.values())

    def list_feature_views(self) -> list[FeatureView]:
        return list(self.contents.feature_views.values())

    def list_feature_services(self) -> list[FeatureService]:
        return list(self.contents.feature_services.values())

    def get_feature_view(self, name: str) -> FeatureView:
        return _get(self.contents.feature_views, "feature view", name)

    def get_feature_service(self, name: str) -> FeatureService:
        return _get(self.contents.feature_services, "feature service", name)

    def get_entity(self, name: str) -> Entity:
        return _get(self.contents.entities, "entity", name)


def _get(table: dict, kind: str, name: str):
    try:
        return table[name]
    except KeyError:
        raise NotFoundError(kind, name, table) from None
