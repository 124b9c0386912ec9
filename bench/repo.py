"""A feature repo over the bench workload, for benchmarks that go through FeatureStore."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pit import DATA, generate  # noqa: E402  (the 1m and 10m workloads)
from pit_data import DEFINITIONS  # noqa: E402


def bench_repo(size: str, online: str, redis_url: str = "") -> Path:
    """A repo named after the size and online store; applies nothing (callers do)."""
    paths, _ = generate(size)
    repo = DATA / f"repo_{size}_{online}"
    repo.mkdir(parents=True, exist_ok=True)
    store = (f"online_store:\n  type: redis\n  connection_string: {redis_url}\n" if online.startswith("redis")
             else f"online_store:\n  type: sqlite\n  path: online.db\n")
    (repo / "featurestore.yaml").write_text(f"project: bench_{size}\nregistry: registry.db\n{store}")
    (repo / "features.py").write_text(DEFINITIONS.format(path=paths["driver_hourly_stats"], partition=None))
    return repo
