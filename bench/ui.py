"""How fast the web UI's pages answer (issue 18's target: within 300 ms on the example repo).

    .venv/bin/python bench/ui.py [--requests 20]

Builds the example repo after a life (tests/ui/world.py: applied twice, materialized,
trained, registered, drifted, a rollout rolled back), serves it with ``featurestore
serve`` (one worker), and times ``--requests`` sequential GETs of each page over HTTP
after two warm-up requests. Prints one JSON object: per page the median, p90 and max in
milliseconds and the answer's size. The monitor report (matplotlib drawing its plots) is
timed cold, its first request in the process, and warm, from the server's cache.
"""

from __future__ import annotations

# Run as a script, this file's folder comes first on sys.path, and bench/http.py would hide
# the standard library's ``http`` package from everything imported below: the folder goes last.
import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE] + [str(_HERE), str(_HERE.parent)]

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import httpx  # noqa: E402

from harness import free_port, serve_ours, stop  # noqa: E402
from tests.ui.world import build_world  # noqa: E402

PAGES = {
    "overview": "/ui/",
    "features": "/ui/features",
    "search": "/ui/features?q=rate",
    "feature_view": "/ui/features/feature_view/driver_hourly_stats",
    "lineage": "/ui/lineage",
    "lineage_of_a_view": "/ui/lineage?kind=feature_view&name=driver_hourly_stats",
    "models": "/ui/models",
    "model": "/ui/models/driver_model",
    "rollout": "/ui/models/driver_model/rollout",
    "monitoring": "/ui/monitoring",
    "model_monitoring": "/ui/monitoring/driver_model",
    "jobs": "/ui/jobs",
}
REPORT = "/ui/monitoring/driver_model/runs/2/report"


def timed(client: httpx.Client, path: str) -> tuple[float, int]:
    began = time.perf_counter()
    answer = client.get(path)
    elapsed = (time.perf_counter() - began) * 1000
    answer.raise_for_status()
    return elapsed, len(answer.content)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20)
    args = parser.parse_args()
    world = build_world(Path(tempfile.mkdtemp(prefix="bench-ui-")))
    port = free_port()
    proc = serve_ours(world.repo, port, 1, {**os.environ, "FEATURESTORE_WATCH_INTERVAL": "1"})
    results = {}
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            cold, size = timed(client, REPORT)
            for name, path in PAGES.items():
                for _ in range(2):
                    timed(client, path)
                times = [timed(client, path) for _ in range(args.requests)]
                ms = sorted(t for t, _ in times)
                results[name] = {"path": path, "median_ms": round(statistics.median(ms), 2),
                                 "p90_ms": round(ms[int(0.9 * (len(ms) - 1))], 2), "max_ms": round(ms[-1], 2),
                                 "bytes": times[-1][1]}
            warm = sorted(timed(client, REPORT)[0] for _ in range(args.requests))
            results["report"] = {"path": REPORT, "cold_ms": round(cold, 2), "median_ms": round(statistics.median(warm), 2),
                                 "bytes": size}
    finally:
        stop(proc)
    slowest = max(results, key=lambda k: results[k]["median_ms"])
    print(json.dumps({
        "bench": "ui", "requests_per_page": args.requests, "target_ms": 300,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "pages": results, "slowest_median": {"page": slowest, "median_ms": results[slowest]["median_ms"]},
        "all_medians_within_target": all(r["median_ms"] <= 300 for r in results.values()),
    }, indent=2))


if __name__ == "__main__":
    main()
