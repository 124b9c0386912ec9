"""The registry's feature definitions as one ``FeatureStore`` last read them.

Read once, then again only when the registry's definitions revision moved (``refresh``);
``apply`` commits against the revision read here, so a concurrent apply is caught.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from featurestore.repo import RepoContents
from featurestore.serialization import DEFINITION_KINDS, contents_from_registry
from featurestore.transforms import import_path

__all__ = ["RegisteredDefinitions"]


class RegisteredDefinitions:
    """``backends.registry``'s definitions of ``project``; ``on_change`` runs (under the
    lock) whenever another version is loaded, e.g. to drop cached read plans."""

    def __init__(self, backends, project: str, repo_path: Path, on_change: Callable[[], None]):
        self._backends, self._project, self._repo_path = backends, project, repo_path
        self._on_change = on_change
        self._lock = threading.Lock()
        self._contents: RepoContents | None = None
        self._revision = -1

    def revision(self) -> int:
        """The registry's definitions revision now (not the one loaded)."""
        return self._backends.registry.revision(self._project, DEFINITION_KINDS)

    def refresh(self) -> bool:
        """Reload if the registry's definitions changed; True when they did."""
        revision = self.revision()
        if revision == self._revision:
            return False
        contents = contents_from_registry(self._backends.registry.list(self._project))
        if contents.on_demand_feature_views:  # their functions are imported from the repo
            import_path(self._repo_path)
        with self._lock:
            self._contents, self._revision = contents, revision
            self._on_change()
        return True

    @property
    def contents(self) -> RepoContents:
        if self._contents is None:
            self.refresh()
        return self._contents

    def seen(self) -> tuple[RepoContents, int]:
        """The definitions loaded and their revision, read together (loading them first)."""
        if self._contents is None:
            self.refresh()
        with self._lock:
            return self._contents, self._revision
