"""Finding the definitions in a repo's Python modules.

Every ``*.py`` file under the repo is imported (hidden folders, virtualenvs, caches and
paths matched by ``.featurestoreignore`` are skipped) and the definition objects at
module level are collected. Scripts such as ``train.py`` should keep their work under
``if __name__ == "__main__":``, as the generated example does.
"""

from __future__ import annotations

import fnmatch
import importlib.util
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from featurestore.definitions import (
    Entity,
    FeatureService,
    FeatureView,
    FileSource,
    OnDemandFeatureView,
    Project,
    PushSource,
    RequestSource,
)
from featurestore.errors import DefinitionError, Problems

__all__ = ["IGNORE_FILE", "RepoContents", "discover", "python_files"]

IGNORE_FILE = ".featurestoreignore"
_SKIP_DIRS = {"__pycache__", "node_modules", "site-packages", "venv", "env", "build", "dist"}


@dataclass
class RepoContents:
    """The definitions of a repo (or of a registry snapshot), by name."""

    entities: dict[str, Entity] = field(default_factory=dict)
    sources: dict[str, FileSource | PushSource] = field(default_factory=dict)
    feature_views: dict[str, FeatureView] = field(default_factory=dict)
    feature_services: dict[str, FeatureService] = field(default_factory=dict)
    request_sources: dict[str, RequestSource] = field(default_factory=dict)
    on_demand_feature_views: dict[str, OnDemandFeatureView] = field(default_factory=dict)
    projects: dict[str, Project] = field(default_factory=dict)  # Feast's Project objects, checked at apply

    def add(self, obj: object, origin: str) -> None:
        if isinstance(obj, Project):
            self._put(self.projects, "project", obj.name, obj, origin)
        elif isinstance(obj, FeatureView):
            self._put(self.feature_views, "feature view", obj.name, obj, origin)
            self.add(obj.source, origin)
            for entity in obj.entities:
                self.add(entity, origin)
        elif isinstance(obj, FeatureService):
            self._put(self.feature_services, "feature service", obj.name, obj, origin)
            for projection in obj.features:
                self.add(projection.view, origin)
        elif isinstance(obj, OnDemandFeatureView):
            if obj.name in self.feature_views:
                raise DefinitionError(f"a feature view and an on-demand feature view are both named {obj.name!r}")
            self._put(self.on_demand_feature_views, "on-demand feature view", obj.name, obj, origin)
            for source in obj.sources:
                self.add(source if isinstance(source, RequestSource) else source.view, origin)
        elif isinstance(obj, RequestSource):
            self._put(self.request_sources, "request source", obj.name, obj, origin)
        elif isinstance(obj, Entity):
            self._put(self.entities, "entity", obj.name, obj, origin)
        elif isinstance(obj, (FileSource, PushSource)):
            self._put(self.sources, "data source", obj.name, obj, origin)

    @staticmethod
    def _put(table: dict, kind: str, name: str, obj: object, origin: str) -> None:
        known = table.get(name)
        if known is not None and known != obj:
            raise DefinitionError(
                f"two different {kind} definitions are named {name!r} (one in {origin}); rename one of them"
            )
        table[name] = obj


def python_files(repo: Path) -> list[Path]:
    """The repo's definition modules, sorted, without hidden, virtualenv or ignored paths."""
    ignore = _ignore_patterns(repo)
    found = []
    for path in sorted(repo.rglob("*.py")):
        rel = path.relative_to(repo)
        parts = rel.parts[:-1]
        if any(p.startswith(".") or p in _SKIP_DIRS for p in parts) or rel.name.startswith("."):
            continue
        if any((repo.joinpath(*parts[: i + 1]) / "pyvenv.cfg").exists() for i in range(len(parts))):
            continue
        if any(fnmatch.fnmatch(str(rel), pat) or fnmatch.fnmatch(str(rel), pat.rstrip("/") + "/*") for pat in ignore):
            continue
        found.append(path)
    return found


def discover(repo: Path, problems: Problems | None = None) -> RepoContents:
    """Import every definition module of ``repo`` and collect its objects. A module that
    fails is reported in ``problems`` and the others are still read (without ``problems``:
    every failure is raised at the end)."""
    repo = repo.resolve()
    contents = RepoContents()
    gathered = problems if problems is not None else Problems()
    if str(repo) not in sys.path:
        sys.path.insert(0, str(repo))  # so definition modules can import each other
    for path in python_files(repo):
        with gathered.each():
            module = _import(repo, path)
            for value in vars(module).values():
                contents.add(value, str(path.relative_to(repo)))
    if problems is None:
        gathered.raise_any()
    return contents


def _import(repo: Path, path: Path):
    rel = path.relative_to(repo)
    name = ".".join(rel.with_suffix("").parts)
    if name.endswith(".__init__"):
        name = name[: -len(".__init__")]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    previous = sys.modules.get(name)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException as exc:  # noqa: BLE001 - any failure of user code is reported, not raised
        if previous is not None:
            sys.modules[name] = previous
        else:
            sys.modules.pop(name, None)
        if isinstance(exc, KeyboardInterrupt):
            raise
        if isinstance(exc, DefinitionError):
            raise DefinitionError(f"{rel}, line {_line_in(exc, path)}: {exc}") from None
        raise DefinitionError(
            f"{rel}, line {_line_in(exc, path)}: importing the module raised "
            f"{type(exc).__name__}: {exc}; fix it and apply again (nothing was changed)"
        ) from None
    return module


def _line_in(exc: BaseException, path: Path) -> int | str:
    if isinstance(exc, SyntaxError) and exc.lineno:
        return exc.lineno
    lines = [f.lineno for f in traceback.extract_tb(exc.__traceback__) if Path(f.filename) == path]
    return lines[-1] if lines else "?"


def _ignore_patterns(repo: Path) -> list[str]:
    file = repo / IGNORE_FILE
    if not file.is_file():
        return []
    lines = (line.strip() for line in file.read_text().splitlines())
    return [line for line in lines if line and not line.startswith("#")]
