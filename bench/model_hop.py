"""What calling a model off the event loop costs: the choice behind ``serving/model_runner.py``.

    .venv/bin/python bench/model_hop.py [--calls 5000] [--rounds 3]

A model call that ``/predict`` can time out must not run on the event loop. This times one
small model call (a numpy logistic regression over 3 features, ~1 us of work) made three
ways from a coroutine, ``--calls`` times each per round, the ways alternating round by
round so a shift in the machine's load hits all alike:

- ``inline``: on the event loop (no timeout possible; a slow model stalls the worker);
- ``executor``: ``asyncio.wait_for(loop.run_in_executor(pool, ...), timeout)``;
- ``runner``: ``ModelRunner.run`` (threads blocking on a ``SimpleQueue``, answered with
  ``call_soon_threadsafe``, a ``call_later`` deadline), what the server uses.

Prints one JSON object: per way, p50 and p99 in microseconds over all rounds.
"""

from __future__ import annotations

# Run as a script, this file's folder comes first on sys.path, and bench/http.py would hide
# the standard library's ``http`` package from everything imported below.
import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

import argparse  # noqa: E402
import asyncio  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
from concurrent.futures import ThreadPoolExecutor  # noqa: E402

import numpy as np  # noqa: E402

from serving.model_runner import ModelRunner  # noqa: E402

_W, _X = np.array([0.1, 0.2, 0.3]), np.array([1.0, 2.0, 3.0])


def model(_: object = None) -> float:
    return float(1.0 / (1.0 + np.exp(-(_X @ _W))))


async def measure(calls: int, rounds: int) -> dict:
    loop = asyncio.get_running_loop()
    runner = ModelRunner()
    runner.start(loop)
    pool = ThreadPoolExecutor(2)

    async def inline():
        return model()

    async def executor():
        return await asyncio.wait_for(loop.run_in_executor(pool, model, None), 1.0)

    async def threads():
        return await runner.run(model, None, 1.0)

    ways = {"inline": inline, "executor": executor, "runner": threads}
    times: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(rounds):
        for name, call in ways.items():
            for _ in range(200):  # warm up
                await call()
            for _ in range(calls):
                began = time.perf_counter()
                await call()
                times[name].append(time.perf_counter() - began)
    runner.stop()
    pool.shutdown()
    out = {}
    for name, values in times.items():
        values.sort()
        out[name] = {"p50_us": round(values[len(values) // 2] * 1e6, 1),
                     "p99_us": round(values[int(len(values) * 0.99)] * 1e6, 1)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=5000, help="calls per way and round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds, alternating the ways")
    args = parser.parse_args()
    result = asyncio.run(measure(args.calls, args.rounds))
    print(json.dumps({"benchmark": "model_hop", "calls": args.calls, "rounds": args.rounds, "results": result}))


if __name__ == "__main__":
    main()
