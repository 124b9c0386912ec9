"""Canonical JSON, spec hashes and the field-level diff behind ``plan``.

Two specs are the same when their canonical JSON (sorted keys, no whitespace, tuples
as lists) is the same; that text is also what the registry stores, so a spec read back
compares equal to the spec written.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from registry.errors import RegistryError
from registry.records import Change, ObjectSpec

__all__ = [
    "Current",
    "canonical_json",
    "changed_fields",
    "check_objects",
    "diff_objects",
    "spec_hash",
]


def canonical_json(value: Any, what: str = "spec") -> str:
    """Serialize ``value`` deterministically; RegistryError if it is not JSON."""
    try:
        # allow_nan=False: NaN/Infinity are not JSON and would not round-trip elsewhere.
        return json.dumps(
            value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
            allow_nan=False,
        )
    except (TypeError, ValueError) as exc:
        raise RegistryError(
            f"{what} is not JSON-serializable ({exc}); store only dicts, lists, "
            "strings, numbers, booleans and None"
        ) from exc


def spec_hash(canonical: str) -> str:
    """SHA-256 of a canonical JSON text."""
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def changed_fields(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Dotted paths where ``old`` and ``new`` differ.

    Dict keys are recursed; lists of equal length are recursed by index; anything else
    that differs (including lists of different length) is reported at its own path.
    """
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        out: list[str] = []
        for key in sorted(set(old) | set(new), key=str):
            path = f"{prefix}.{key}" if prefix else str(key)
            if key not in old or key not in new:
                out.append(path)
            else:
                out.extend(changed_fields(old[key], new[key], path))
        return out
    if _is_list(old) and _is_list(new) and len(old) == len(new):
        out = []
        for i, (a, b) in enumerate(zip(old, new)):
            out.extend(changed_fields(a, b, f"{prefix}.{i}" if prefix else str(i)))
        return out
    # Leaves compare as canonical JSON, like the spec hash: 1, 1.0 and True differ.
    if canonical_json(old) != canonical_json(new):
        return [prefix] if prefix else ["."]
    return []


def _is_list(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, (str, bytes))


class Current(NamedTuple):
    """What ``diff_objects`` needs of a stored current object."""

    spec_json: str
    spec_hash: str
    depends_on: tuple[tuple[str, str], ...]


def diff_objects(
    stored: Mapping[tuple[str, str], Current],
    objects: Sequence[ObjectSpec],
    kinds: Sequence[str],
) -> list[Change]:
    """Changes that turn ``stored`` into ``objects`` for the given ``kinds``.

    ``stored`` maps ``(kind, name)`` of the current (not removed) objects of ``kinds``.
    An object changes when the hash of its canonical spec or its depends_on differs;
    objects of ``kinds`` missing from ``objects`` are removed. The result is sorted by
    the position of the kind in ``kinds``, then name.
    """
    order = check_objects(objects, kinds)
    changes: list[Change] = []
    wanted = {(o.kind, o.name): o for o in objects}
    for key, obj in wanted.items():
        new_json = canonical_json(obj.spec, f"spec of {obj.kind} {obj.name!r}")
        old = stored.get(key)
        if old is None:
            changes.append(Change(obj.kind, obj.name, "add"))
            continue
        fields: list[str] = []
        if spec_hash(new_json) != old.spec_hash:
            # Parsed back from canonical text so tuples and lists compare alike.
            fields = changed_fields(json.loads(old.spec_json), json.loads(new_json))
        if old.depends_on != obj.depends_on:
            fields.append("depends_on")
        if fields:
            changes.append(Change(obj.kind, obj.name, "change", tuple(fields)))
    for kind, name in stored:
        if kind in order and (kind, name) not in wanted:
            changes.append(Change(kind, name, "remove"))
    changes.sort(key=lambda c: (order[c.kind], c.name))
    return changes


def check_objects(objects: Sequence[ObjectSpec], kinds: Sequence[str]) -> dict[str, int]:
    """Validate an apply's input; return each kind's position in ``kinds``."""
    if isinstance(kinds, str):
        raise RegistryError(f"kinds must be a tuple of kinds, not the string {kinds!r}")
    order = {kind: i for i, kind in enumerate(kinds)}
    seen: set[tuple[str, str]] = set()
    for obj in objects:
        if not isinstance(obj, ObjectSpec):
            raise RegistryError(f"apply takes ObjectSpec objects, got {type(obj).__name__}")
        if obj.kind not in order:
            raise RegistryError(
                f"{obj.kind} {obj.name!r} is not of the applied kinds {tuple(kinds)}; "
                "add its kind to kinds or store it with put()"
            )
        if (obj.kind, obj.name) in seen:
            raise RegistryError(
                f"{obj.kind} {obj.name!r} is defined twice; give each object a unique name"
            )
        seen.add((obj.kind, obj.name))
    return order
