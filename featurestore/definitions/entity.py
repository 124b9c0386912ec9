"""Entities and fields: the nouns features are keyed by and the columns they hold."""

from __future__ import annotations

from dataclasses import dataclass, field

from featurestore.errors import DefinitionError
from featurestore.names import check_name
from featurestore.types import FeatureType

__all__ = ["Entity", "Field"]


def _check_name(kind: str, name: object) -> None:
    # Names become registry and Redis keys and, for push sources, folder names: the one
    # name rule of featurestore/names.py, as Python identifiers.
    check_name(f"{kind} name", name, identifier=True, error=DefinitionError)


@dataclass(frozen=True)
class Field:
    """A named, typed column of a feature view, e.g. ``Field("conv_rate", Float32)``."""

    name: str
    dtype: FeatureType
    description: str = ""
    tags: dict[str, str] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        _check_name("field", self.name)
        if not isinstance(self.dtype, FeatureType):
            raise DefinitionError(
                f"field {self.name!r} has dtype {self.dtype!r}; use a type from "
                "featurestore.types such as Int64, Float32 or Array(Float32)"
            )


@dataclass(frozen=True)
class Entity:
    """A business object features describe (a driver, a customer), found by its join keys."""

    name: str
    join_keys: tuple[str, ...] = ()
    description: str = ""
    tags: dict[str, str] = field(default_factory=dict, hash=False)
    owner: str = ""

    def __post_init__(self) -> None:
        _check_name("entity", self.name)
        keys = (self.join_keys,) if isinstance(self.join_keys, str) else tuple(self.join_keys or ())
        if not keys:
            keys = (self.name,)  # Feast's default: the entity's name is its join key
        for key in keys:
            _check_name(f"join key of entity {self.name!r}", key)
        if len(set(keys)) != len(keys):
            raise DefinitionError(f"entity {self.name!r} lists a join key twice: {list(keys)}")
        object.__setattr__(self, "join_keys", keys)

    @property
    def join_key(self) -> str:
        """The join key of a single-key entity (Feast's spelling)."""
        if len(self.join_keys) != 1:
            raise DefinitionError(f"entity {self.name!r} has composite join keys {list(self.join_keys)}")
        return self.join_keys[0]
