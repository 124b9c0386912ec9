"""CPU time of the serving process per ``POST /predict`` request (issue 11).

    .venv/bin/python bench/predict_cpu.py [--requests 3000] [--rounds 3]

Wall time on a shared machine is noisy; the CPU the server spends per request is not.
Starts ``ours`` and the raw endpoint of bench/predict.py (one worker each), sends a fixed
number of requests at concurrency 16 per case and reads the server process's user+system
CPU time (``/proc/PID/stat``, with its children) before and after: µs per request, median
of the rounds. Prints one JSON object.
"""

from __future__ import annotations

import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE] + [str(_HERE)]

import argparse  # noqa: E402
import asyncio  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402

from harness import answer, free_port, load, post, serve_ours, serve_raw, serving_repo, stop  # noqa: E402
from predict import MODELS, RAW_APP, SHAPES, check_same_predictions, register_models  # noqa: E402

_TICK = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> float:
    """User+system CPU of ``pid`` and of every process below it."""
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / _TICK
        for task in Path(f"/proc/{p}/task").iterdir():
            children = task / "children"
            if children.exists():
                todo += [int(c) for c in children.read_text().split()]
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--models", default="logreg,gbm")
    parser.add_argument("--shapes", default="1")
    parser.add_argument("--serving-log", default="on", choices=("on", "off"),
                        help="FEATURESTORE_SERVING_LOG of ours (off: what the serving log costs, by difference)")
    args = parser.parse_args()
    results: dict = {}
    with serving_repo("featurestore-bench-predict-cpu-") as (folder, repo, env):
        env["FEATURESTORE_SERVING_LOG"] = args.serving_log
        raw_env = register_models(repo, folder, env)
        ports = {"ours": free_port(), "raw": free_port()}
        servers = {"ours": serve_ours(repo, ports["ours"], 1, env)}
        try:
            servers["raw"] = serve_raw(folder, RAW_APP, ports["raw"], 1, raw_env)
            for model in args.models.split(","):
                for shape in args.shapes.split(","):
                    body = {"entities": {"driver_id": SHAPES[shape]}}
                    requests = {n: post(p, f"/predict/{MODELS[model]}", body) for n, p in ports.items()}
                    check_same_predictions(answer(ports["ours"], requests["ours"]), answer(ports["raw"], requests["raw"]))
                    per: dict = {"ours": [], "raw": []}
                    for _ in range(args.rounds):
                        for name in ("ours", "raw"):
                            asyncio.run(load(ports[name], requests[name], 16, 300, 60))  # warm
                            before = _cpu_seconds(servers[name].pid)
                            asyncio.run(load(ports[name], requests[name], 16, args.requests, 600))
                            used = _cpu_seconds(servers[name].pid) - before
                            per[name].append(used / args.requests * 1e6)
                    ours, raw = statistics.median(per["ours"]), statistics.median(per["raw"])
                    results[f"{model}_{shape}"] = {"ours_cpu_us": round(ours), "raw_cpu_us": round(raw),
                                                   "ours_vs_raw": round(ours / raw, 3),
                                                   "rounds": {k: [round(v) for v in vs] for k, vs in per.items()}}
        finally:
            for proc in servers.values():
                stop(proc)
    print(json.dumps({"benchmark": "CPU per POST /predict request, concurrency 16, 1 worker",
                      "requests": args.requests, "serving_log": args.serving_log, "results": results}, indent=2))


if __name__ == "__main__":
    main()
