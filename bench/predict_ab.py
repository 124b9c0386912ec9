"""Does a change move ``POST /predict``'s tail? Two of our servers, A and B, in interleaved rounds.

    .venv/bin/python bench/predict_ab.py [--b-tree PATH] [--b-env KEY=VALUE ...] [--a-env KEY=VALUE ...]
        [--model gbm] [--shape 1] [--rounds 30] [--requests 800]

On shared cores one run's p99 drifts by a fifth over minutes, more than most changes
move it, so two long runs one after the other compare the machine's moods, not the code.
This starts A (this checkout) and B (the same, or the source tree at ``--b-tree`` put
first on ``PYTHONPATH``; each with its own extra environment, e.g. ``--b-env
FEATURESTORE_SERVING_LOG=off``; the log is on otherwise, as in bench/predict.py) side by side, one worker each, on the example repo and
the models of bench/predict.py, and measures them in rounds at concurrency 1: each
round sends ``--requests`` requests to each, in two halves around the other's (A, B, B,
A, then the other way round), and gives one ratio, B's p99 / A's, of two measures
taken within seconds of each other. The rounds are summarised as bench/rollout.py does
(``spread``: median, quartiles, a 95% bootstrap interval of the median); ``b_vs_a`` says
``faster``/``slower`` when the whole interval lies below/above 1, else ``same``.
Prints one JSON object.
"""

from __future__ import annotations

# Run as a script, this file's folder comes first on sys.path, and bench/http.py would hide
# the standard library's ``http`` package from everything imported below: the folder goes last.
import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE] + [str(_HERE)]

import argparse  # noqa: E402
import asyncio  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402

from harness import free_port, load, post, serve_ours, serving_repo, stop  # noqa: E402
from predict import MODELS, SHAPES, register_models  # noqa: E402
from rollout import p99, spread  # noqa: E402


def _pairs(items: list[str]) -> dict:
    try:
        return dict(item.split("=", 1) for item in items)
    except ValueError:
        raise SystemExit(f"--a-env/--b-env take KEY=VALUE, got {items!r}") from None


def rounds(ports: dict, request: dict, count: int, requests: int) -> list[dict]:
    """Per round, A's and B's c1 p99 (ms), each in two halves around the other's, and B / A."""
    out = []
    for round_ in range(count):
        outer, inner = ("a", "b") if round_ % 2 == 0 else ("b", "a")
        latencies: dict = {"a": [], "b": []}
        for name in (outer, inner, inner, outer):
            latencies[name] += asyncio.run(load(ports[name], request[name], 1, requests // 2, 60))[0]
        a, b = p99(latencies["a"]) * 1000, p99(latencies["b"]) * 1000
        out.append({"outer": outer, "a_p99_ms": round(a, 3), "b_p99_ms": round(b, 3), "ratio": round(b / a, 3)})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--b-tree", help="a source tree of this project (a worktree) that B runs")
    parser.add_argument("--a-env", nargs="*", default=[], metavar="KEY=VALUE", help="extra environment for A")
    parser.add_argument("--b-env", nargs="*", default=[], metavar="KEY=VALUE", help="extra environment for B")
    parser.add_argument("--model", choices=sorted(MODELS), default="gbm")
    parser.add_argument("--shape", choices=sorted(SHAPES), default="1", help="entities per request")
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--requests", type=int, default=800, help="c1 requests per server and round")
    parser.add_argument("--warmup", type=int, default=500)
    args = parser.parse_args()
    if args.b_tree and not (Path(args.b_tree) / "featurestore" / "__init__.py").exists():
        raise SystemExit(f"--b-tree {args.b_tree}: no featurestore package there; give a checkout of this project")
    extra = {"a": _pairs(args.a_env), "b": _pairs(args.b_env)}
    with serving_repo("featurestore-bench-predict-ab-") as (folder, repo, env):
        env["FEATURESTORE_SERVING_LOG"] = "on"  # as bench/predict.py serves ours
        register_models(repo, folder, env)
        ports = {name: free_port() for name in ("a", "b")}
        servers = {}
        try:
            for name in ("a", "b"):
                server_env = {**env, **extra[name]}
                if name == "b" and args.b_tree:
                    server_env["PYTHONPATH"] = os.pathsep.join(
                        [str(Path(args.b_tree).resolve()), *filter(None, [env.get("PYTHONPATH")])])
                servers[name] = serve_ours(repo, ports[name], 1, server_env)
            body = {"entities": {"driver_id": SHAPES[args.shape]}}
            request = {n: post(p, f"/predict/{MODELS[args.model]}", body) for n, p in ports.items()}
            for name in ("a", "b"):
                asyncio.run(load(ports[name], request[name], 1, args.warmup, 60))
            measured = rounds(ports, request, args.rounds, args.requests)
        finally:
            for proc in servers.values():
                stop(proc)
    ratio = spread([r["ratio"] for r in measured])
    low, high = ratio["ci95"]
    print(json.dumps({
        "benchmark": "POST /predict c1 p99, B / A in interleaved rounds, 1 worker each",
        "a": {"tree": str(_HERE.parent), "env": extra["a"]},
        "b": {"tree": str(Path(args.b_tree).resolve()) if args.b_tree else str(_HERE.parent), "env": extra["b"]},
        "case": f"{args.model}_{args.shape}", "requests_per_round": args.requests,
        "c1_p99_ratio": ratio, "b_vs_a": "faster" if high < 1 else "slower" if low > 1 else "same",
        "rounds": measured,
    }, indent=2))


if __name__ == "__main__":
    main()
