"""Feast's ``Project`` object: the repo's project, named as in featurestore.yaml."""

from __future__ import annotations

from dataclasses import dataclass, field

from featurestore.definitions.entity import _check_name

__all__ = ["Project"]


@dataclass(frozen=True)
class Project:
    """``Project(name=..., description=...)``. Optional: featurestore.yaml's ``project`` names
    the project; a Project in the repo must carry the same name (apply checks it)."""

    name: str
    description: str = ""
    tags: dict[str, str] = field(default_factory=dict, hash=False)
    owner: str = ""

    def __post_init__(self) -> None:
        _check_name("project", self.name.replace("-", "_") if isinstance(self.name, str) else self.name)
