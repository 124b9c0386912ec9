"""Registry latency on SQLite and PostgreSQL: applies and the reads servers and schedulers make.

    .venv/bin/python bench/registry_latency.py --objects 100 --repeat 300
    .venv/bin/python bench/registry_latency.py --postgres-url postgresql://fs@db:5432/features

Each backend starts empty (a new SQLite file in a temp folder; a new schema on the
PostgreSQL server, dropped at the end: by default the one at 127.0.0.1:5432) and gets the
same calls, one process, one connection:

- ``apply_change``: ``apply`` of ``--objects`` feature views where one spec changed (a
  diff, one new version, the revision bump), what ``featurestore apply`` does;
- ``apply_unchanged``: the same apply with nothing changed (read and diff only);
- ``revision``: ``revision(project, kinds)``, the poll every API worker makes each second;
- ``get`` / ``list``: one object; every current object (what a reload reads);
- ``put_numbered``: a model version registration; ``lock_renew``: a lease's heartbeat.

Prints one JSON object: per backend and operation the median and p99 in milliseconds.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from registry import ObjectSpec, Registry

PROJECT = "bench"
KINDS = ("entity", "feature_view")


def definitions(count: int, changed: int) -> list[ObjectSpec]:
    views = [
        ObjectSpec("feature_view", f"view_{i:04d}",
                   {"ttl": 86400, "schema": [{"name": f"f{j}", "dtype": "Float64"} for j in range(10)],
                    "source": f"source_{i}", "version": changed if i == 0 else 0},
                   (("entity", "driver"),))
        for i in range(count)
    ]
    return [ObjectSpec("entity", "driver", {"join_keys": ["driver_id"]}), *views]


def timed(call: Callable[[int], object], repeat: int) -> dict[str, float]:
    samples = []
    for i in range(repeat):
        start = time.perf_counter()
        call(i)
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    return {"median_ms": round(statistics.median(samples), 3),
            "p99_ms": round(samples[min(len(samples) - 1, int(len(samples) * 0.99))], 3), "runs": repeat}


def measure(location: str, objects: int, repeat: int) -> dict[str, dict[str, float]]:
    with Registry.open(location) as reg:
        reg.apply(PROJECT, definitions(objects, 0), KINDS)
        applies = max(repeat // 10, 10)
        results = {
            "apply_change": timed(lambda i: reg.apply(PROJECT, definitions(objects, i + 1), KINDS), applies),
            "apply_unchanged": timed(lambda i: reg.apply(PROJECT, definitions(objects, applies), KINDS), applies),
            "revision": timed(lambda i: reg.revision(PROJECT, KINDS), repeat),
            "get": timed(lambda i: reg.get(PROJECT, "feature_view", f"view_{i % objects:04d}"), repeat),
            "list": timed(lambda i: reg.list(PROJECT), max(repeat // 10, 10)),
            "put_numbered": timed(lambda i: reg.put_numbered(PROJECT, "model_version", "m/", {"i": i}), applies),
        }
        reg.jobs.acquire_lock(PROJECT, "materialize:v", "bench", 60, time.time())
        results["lock_renew"] = timed(lambda i: reg.jobs.renew_lock(PROJECT, "materialize:v", "bench", 60,
                                                                    time.time()), repeat)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=100, help="feature views in the project")
    parser.add_argument("--repeat", type=int, default=300, help="calls per read operation (applies: a tenth)")
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()

    results = {}
    with tempfile.TemporaryDirectory() as folder:
        results["sqlite"] = measure(str(Path(folder) / "registry.db"), args.objects, args.repeat)
    import psycopg

    schema = f"bench_{uuid.uuid4().hex[:10]}"
    joiner = "&" if "?" in args.postgres_url else "?"
    try:
        results["postgresql"] = measure(f"{args.postgres_url}{joiner}schema={schema}", args.objects, args.repeat)
    finally:
        with psycopg.connect(args.postgres_url, autocommit=True) as admin:
            admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    ratios = {op: round(results["postgresql"][op]["median_ms"] / max(results["sqlite"][op]["median_ms"], 1e-6), 2)
              for op in results["sqlite"]}
    print(json.dumps({"benchmark": "registry", "objects": args.objects, "results": results,
                      "postgresql_over_sqlite_median": ratios}, indent=2))


if __name__ == "__main__":
    main()
