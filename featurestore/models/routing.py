"""Which variant serves an entity during a rollout: a stable hash of its key under the weight.

The hash is BLAKE2b of the key's values as canonical JSON (join keys in their order), so
every worker, process and machine puts an entity in the same bucket, and an entity stays
on its variant while the weight holds (and, as the weight grows, only moves from stable
to candidate, never back). Buckets are hundredths of a percent: 0 <= bucket < 100.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Route", "bucket", "routes", "to_candidate"]

_BUCKETS = 10_000


@dataclass(frozen=True)
class Route:
    """What serving needs of a rollout: the two versions, the mode and the weight."""

    stable: int
    candidate: int
    mode: str
    weight: int
    failed_checks: int = 0


def bucket(key: Sequence[Any]) -> float:
    """The entity's bucket in [0, 100): the same for the same key everywhere."""
    text = json.dumps(list(key), separators=(",", ":"), default=str, sort_keys=True)
    digest = hashlib.blake2b(text.encode(), digest_size=8).digest()
    return (int.from_bytes(digest, "big") % _BUCKETS) / 100


def to_candidate(key: Sequence[Any], weight: int) -> bool:
    """Whether the entity with ``key`` falls under ``weight`` percent (at 100 every one
    does: no hash, a shadow mirroring all traffic costs its requests nothing here)."""
    return weight >= 100 or (weight > 0 and bucket(key) < weight)


def routes(registry, project: str) -> dict[str, Route]:
    """``{model: Route}`` of every running or paused rollout, from one registry read."""
    found = {}
    for obj in registry.list(project, "rollout"):
        s = obj.spec
        if s["state"] in ("running", "paused"):
            found[s["model"]] = Route(s["stable"], s["candidate"], s["mode"], s["weight"], s["failed_checks"])
    return found
