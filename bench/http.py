"""HTTP serving benchmark: ``POST /get-online-features`` against a raw redis-py endpoint.

    .venv/bin/python bench/http.py [--workers 1,2] [--seconds 10] [--c1-requests 3000]

Sets up the example repo on a Redis online store (bench/harness.py: ``serving_repo``), then
for each worker count starts two servers side by side:

- ``ours``: ``featurestore serve --workers N --no-access-log``;
- ``raw``: the physical-limit proxy, a minimal FastAPI app under the same uvicorn that
  parses the same request body, does the same Redis lookup itself with redis-py (one
  HMGET, or a pipeline of them) and returns the decoded values as JSON; no registry, no
  statuses, no metrics, no validation.

Per request shape (1 entity x 3 features, 10 entities x 3 features), after checking that
both serve the same values: p50/p99 latency at concurrency 1, then requests/s at
concurrency 16, in alternating rounds (bench/harness.py: ``compare``). Prints one JSON
object. Targets (issue 4):
p99 <= 1.5x raw at concurrency 1, requests/s >= 0.7x raw at concurrency 16.
"""

from __future__ import annotations

# Run as a script, this file's folder comes first on sys.path, and its name would hide the
# standard library's ``http`` package from everything imported below: the folder goes last.
import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE] + [str(_HERE)]

import argparse  # noqa: E402
import json  # noqa: E402

from harness import DRIVERS, RAW_READ, REFS, add_load_options, run, serving_repo  # noqa: E402

SHAPES = {"1x3": DRIVERS[:1], "10x3": (DRIVERS * 2)[:10]}
PATH = "/get-online-features"

RAW_APP = RAW_READ + '''

@app.post("/get-online-features")
async def raw(request: Request) -> Response:
    ids = json.loads(await request.body())["entities"]["driver_id"]
    conv_rate, acc_rate, avg_daily_trips = read(ids)
    out = {"driver_id": ids, "conv_rate": conv_rate, "acc_rate": acc_rate, "avg_daily_trips": avg_daily_trips}
    return Response(json.dumps(out), media_type="application/json")
'''


def check_same_values(ours: bytes, raw: bytes) -> None:
    """Both endpoints must serve the same materialized values (else the comparison is moot)."""
    ours_json, raw_json = json.loads(ours), json.loads(raw)
    names = ours_json["metadata"]["feature_names"]
    served = {name: result["values"] for name, result in zip(names, ours_json["results"])}
    if served != raw_json or any(s != "PRESENT" for r in ours_json["results"] for s in r["statuses"]):
        sys.exit(f"ours and raw disagree:\n{served}\n{raw_json}")


# --- main ------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_load_options(parser)
    args = parser.parse_args()
    cases = {shape: (PATH, {"features": REFS, "entities": {"driver_id": ids}}) for shape, ids in SHAPES.items()}
    with serving_repo("featurestore-bench-http-") as (folder, repo, env):
        run(args, title="POST /get-online-features, Redis online store, loopback", repo=repo, env=env,
            raw=(folder, RAW_APP, env), cases=cases, check=check_same_values, max_p99=1.5, min_rps=0.7)


if __name__ == "__main__":
    main()
