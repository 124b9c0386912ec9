"""The registry's records: what callers give it and what it gives back.

Records hold data only; storing them is ``registry.store``'s job and comparing them is
``registry.diff``'s.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from registry.errors import RegistryError

__all__ = [
    "ApplyResult",
    "Change",
    "ChangeAction",
    "Edge",
    "ObjectSpec",
    "StoredObject",
]

ChangeAction = Literal["add", "change", "remove"]


def _check_name(what: str, value: object) -> None:
    if not isinstance(value, str) or not value:
        raise RegistryError(f"{what} must be a non-empty string, got {value!r}")


def _normalize_depends_on(pairs: Any, owner: str) -> tuple[tuple[str, str], ...]:
    """Return ``pairs`` as sorted, unique ``(kind, name)`` tuples.

    Sorted so that listing the same dependencies in another order is not a change.
    """
    out: set[tuple[str, str]] = set()
    for pair in pairs or ():
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise RegistryError(
                f"depends_on of {owner} must hold (kind, name) pairs, got {pair!r}"
            )
        kind, name = pair
        _check_name(f"a depends_on kind of {owner}", kind)
        _check_name(f"a depends_on name of {owner}", name)
        out.add((kind, name))
    return tuple(sorted(out))


@dataclass(frozen=True)
class ObjectSpec:
    """An object to store: its kind, name, JSON spec and what it reads from.

    ``depends_on`` lists the ``(kind, name)`` pairs this object reads from; they become
    lineage edges. It is normalized to sorted unique pairs.
    """

    kind: str
    name: str
    spec: dict[str, Any]
    depends_on: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        _check_name("kind", self.kind)
        _check_name(f"name of a {self.kind}", self.name)
        if not isinstance(self.spec, dict):
            raise RegistryError(
                f"spec of {self.kind} {self.name!r} must be a dict, "
                f"got {type(self.spec).__name__}"
            )
        deps = _normalize_depends_on(self.depends_on, f"{self.kind} {self.name!r}")
        object.__setattr__(self, "depends_on", deps)


@dataclass(frozen=True)
class StoredObject:
    """One stored version of an object.

    ``revision`` is the project revision that wrote this version. A tombstone
    (``removed=True``) keeps the spec of the version it removed, so history shows what
    went away.
    """

    kind: str
    name: str
    version: int
    spec: dict[str, Any]
    depends_on: tuple[tuple[str, str], ...]
    created_at: datetime
    revision: int
    removed: bool


@dataclass(frozen=True)
class Change:
    """One difference between the stored state and what an apply would write.

    ``fields`` holds the dotted spec paths that differ for a ``"change"``, e.g.
    ``("ttl", "schema.1.dtype")``; ``"depends_on"`` when only the dependencies differ.
    It is empty for ``"add"`` and ``"remove"``.
    """

    kind: str
    name: str
    action: ChangeAction
    fields: tuple[str, ...] = ()


@dataclass(frozen=True)
class Edge:
    """A lineage edge in the direction data flows.

    ``from`` is the dependency and ``to`` the object that reads from it: a feature view
    that depends on data source ``x`` gives ``Edge("data_source", "x", "feature_view",
    view_name)``.
    """

    from_kind: str
    from_name: str
    to_kind: str
    to_name: str


@dataclass(frozen=True)
class ApplyResult:
    """What an apply changed and the project revision after it."""

    changes: list[Change] = field(default_factory=list)
    revision: int = 0
