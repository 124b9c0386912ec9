"""Which file configures a repo: ``featurestore.yaml``, else Feast's ``feature_store.yaml``
(so a Feast repo runs before it is renamed), and where to look when there is neither."""

from __future__ import annotations

import logging
from pathlib import Path

from featurestore.errors import ConfigError

__all__ = ["CONFIG_FILE", "FEAST_CONFIG_FILE", "find_config_file"]

CONFIG_FILE = "featurestore.yaml"
FEAST_CONFIG_FILE = "feature_store.yaml"

log = logging.getLogger("featurestore")


def find_config_file(repo: Path) -> Path:
    """``repo``'s settings file; a ConfigError naming the nearest one elsewhere when it has none."""
    ours, feasts = repo / CONFIG_FILE, repo / FEAST_CONFIG_FILE
    if ours.is_file():
        return ours
    if feasts.is_file():
        log.warning("note: reading Feast's %s in %s (no %s there); rename it to %s to silence this note",
                    FEAST_CONFIG_FILE, repo, CONFIG_FILE, CONFIG_FILE)
        return feasts
    raise ConfigError(f"no {CONFIG_FILE} (or Feast's {FEAST_CONFIG_FILE}) in {repo}; " + _hint(repo))


def _hint(repo: Path) -> str:
    # Parent folders first (a command run inside a repo's subfolder), then the folders
    # just below (Feast's `feast init` puts the file in `<project>/feature_repo/`).
    nearby = [*repo.parents, *_children(repo)]
    for folder in nearby:
        for name in (CONFIG_FILE, FEAST_CONFIG_FILE):
            if (folder / name).is_file():
                return f"found {folder / name}: pass that repo folder (`featurestore -r {folder} ...`)"
    return (f"run `featurestore init {repo}` to create a repo, or pass the repo folder that holds it "
            "(`featurestore -r PATH ...`)")


def _children(repo: Path) -> list[Path]:
    try:
        return sorted(p for p in repo.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError:
        return []
