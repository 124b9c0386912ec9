"""CPU time a shadowed ``POST /predict`` request costs beyond a plain one, per thread and process.

    .venv/bin/python bench/shadow_cpu.py [--rounds 10] [--requests 500] [--callgrind]

Wall time on shared cores moves with their load; a thread's CPU time moves much less,
and instruction counts not at all. The app of ``featurestore serve`` (``create_app``,
with bench/rollout.py's two models: ``bench_plain`` and ``bench_shadowed`` in a shadow
rollout at weight 100) runs in this process and is called in process, one request at a
time, as uvicorn calls it (bench/predict_callgrind.py: ``_call``), so the event loop is
this process's main thread and the HTTP parsing, the same for both, is left out. In
alternating rounds (the order flipping each round) of ``--requests`` requests to each
model, then ``SHADOW_SETTLE`` seconds for the round's last shadow batch to be scored:

- ``main_us``: the main thread's CPU (``time.thread_time``): the requests themselves;
- ``threads_us``: the process's other threads' (the serving log's, the metric
  flusher's), from the scheduler's counts (``/proc/self/task/*/schedstat``);
- ``children_us``: its descendants' (the serving log's process, which scores the shadow,
  and its model process), the same way, and ``shadow_processes_us``: those two alone;

each in µs per request, per round, with the medians over the rounds of shadowed - plain
and their interquartile range; and ``shadow_processes_us_per_shadowed_request``: all the
shadow processes spent over the rounds of both models (on busy cores a shadowed round's
last jobs are scored during the next plain round) per shadowed request. ``--callgrind`` runs the same under ``valgrind
--tool=callgrind --separate-threads=yes`` instead and reports the main thread's
instructions per request, plain and shadowed (it needs valgrind's headers and a C
compiler, as bench/predict_callgrind.py). Prints one JSON object.
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
import re  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402

from rollout import SHADOW_SETTLE, cpu_seconds  # noqa: E402

MODELS = {"plain": "bench_plain", "shadowed": "bench_shadowed"}
WARMUP = 300


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--requests", type=int, default=500, help="requests per model per round")
    parser.add_argument("--callgrind", action="store_true", help="main thread's instructions, under callgrind")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(asyncio.run(_child(args.rounds, args.requests))))
        return

    from harness import serving_repo
    from predict_callgrind import _MARKS_C
    from rollout import register

    with serving_repo("featurestore-bench-shadow-cpu-") as (folder, repo, env):
        register(repo, env)
        env.update(BENCH_REPO=str(repo))
        child = [sys.executable, __file__, "--child", "--rounds", str(args.rounds), "--requests", str(args.requests)]
        if not args.callgrind:
            out = subprocess.run(child, env=env, cwd=repo, check=True, stdout=subprocess.PIPE, text=True).stdout
            print(json.dumps({"benchmark": "CPU µs per POST /predict request, shadowed vs plain, in process",
                              **json.loads(out.splitlines()[-1])}, indent=2))
            return
        (folder / "marks.c").write_text(_MARKS_C)
        subprocess.run(["cc", "-O1", "-shared", "-fPIC", "-o", folder / "marks.so", folder / "marks.c"], check=True)
        env["BENCH_MARKS"] = str(folder / "marks.so")
        out = folder / "callgrind.out"
        subprocess.run(["valgrind", "-q", "--tool=callgrind", "--separate-threads=yes",
                        f"--callgrind-out-file={out}", *child], env=env, cwd=repo, check=True,
                       stdout=subprocess.DEVNULL)
        per = args.rounds * args.requests
        results: dict = {}
        for dump in sorted(folder.glob("callgrind.out.*")):  # callgrind.out.N-TT: dump N, thread TT
            text = dump.read_text()
            name = re.search(r"^desc: Trigger: Client Request: (\S+)", text, re.M).group(1)
            thread = int(re.search(r"^thread: (\d+)", text, re.M).group(1))
            total = int(re.search(r"^(?:summary|totals): (\d+)", text, re.M).group(1))
            key = "main_k_instructions" if thread == 1 else "other_threads_k_instructions"
            results.setdefault(name, {}).setdefault(key, 0)
            results[name][key] += round(total / per / 1000, 1)
        print(json.dumps({"benchmark": "instructions per POST /predict request (thousands), in process, callgrind",
                          "requests": per, "results": results}, indent=2))


async def _child(rounds: int, requests: int) -> dict:
    from harness import DRIVERS, post
    from predict_callgrind import _call, _settle

    from serving.app import create_app

    marks = None
    if os.environ.get("BENCH_MARKS"):
        import ctypes

        marks = ctypes.CDLL(os.environ["BENCH_MARKS"])
    app = create_app(os.environ["BENCH_REPO"], watch_interval=0)
    if marks is not None:  # under callgrind a call takes ~50x its time (predict_callgrind.py)
        app.state.serving.models.timeout, app.state.serving.models.inline_budget = 60.0, 6.0
    pid = os.getpid()
    spent: dict = {name: [] for name in MODELS}
    async with app.router.lifespan_context(app):
        requests_of = {}
        for name, model in MODELS.items():
            await app.state.serving.models.get(model)
            path = f"/predict/{model}"
            requests_of[name] = (path, post(0, path, {"entities": {"driver_id": DRIVERS[:1]}}).split(b"\r\n\r\n", 1)[1])
            for _ in range(WARMUP):
                await _call(app, *requests_of[name])
        await _shadow_scored(app, *requests_of["shadowed"])
        for round_ in range(rounds if marks is None else 1):
            for name in (list(MODELS) if round_ % 2 == 0 else list(reversed(MODELS))):
                _settle()
                shadow_pid = app.state.serving.serving_log.writer._process.pid  # scores the shadow (started with the first row)
                before, began = cpu_seconds(pid), time.thread_time()
                shadow_before = sum(cpu_seconds(shadow_pid))
                for _ in range(requests):
                    await _call(app, *requests_of[name])
                main = time.thread_time() - began
                await asyncio.sleep(SHADOW_SETTLE)  # the round's last batch scored within the round
                after = cpu_seconds(pid)
                spent[name].append({"main_us": main, "threads_us": after[1] - before[1],
                                    "children_us": after[2] - before[2],
                                    "shadow_processes_us": sum(cpu_seconds(shadow_pid)) - shadow_before})
        if marks is not None:  # one measure per model, of rounds x requests requests each
            for name in MODELS:
                _settle()
                marks.zero()
                for _ in range(rounds * requests):
                    await _call(app, *requests_of[name])
                await asyncio.sleep(SHADOW_SETTLE * 10)
                marks.dump(name.encode())
            return {}
    return _summary(spent, requests)


async def _shadow_scored(app, path: str, body: bytes, seconds: float = 600.0) -> None:
    """Once the serving log's process has scored a shadow row: its start-up (imports, the model process,
    the candidate's load) runs behind the requests, and on busy cores took 30 s, which
    would land in the first rounds. Then a few seconds more for its first serving log write."""
    from predict_callgrind import _call
    from prometheus_client import REGISTRY  # reading it adds the pending metric updates first

    labels = {"model": MODELS["shadowed"], "version": "2", "variant": "shadow", "status": "ok"}
    deadline = time.monotonic() + seconds
    while not REGISTRY.get_sample_value("featurestore_predictions_total", labels):
        if time.monotonic() > deadline:
            sys.exit(f"the serving log process did not score a shadow row within {seconds:g} s")
        for _ in range(20):
            await _call(app, path, body)
        await asyncio.sleep(SHADOW_SETTLE)
    await asyncio.sleep(3.0)


def _summary(spent: dict, requests: int) -> dict:
    """Per round, µs per request per model; over the rounds, the medians and quartiles of
    shadowed - plain (a round's two models measured side by side)."""
    per_round = [{name: {k: round(v * 1e6 / requests, 1) for k, v in spent[name][i].items()} for name in MODELS}
                 for i in range(len(spent["plain"]))]
    out: dict = {"requests_per_round": requests, "rounds": per_round, "shadow_extra_us": {}}
    for key in ("main_us", "threads_us", "children_us", "shadow_processes_us"):
        extra = [r["shadowed"][key] - r["plain"][key] for r in per_round]
        q = statistics.quantiles(extra, n=4, method="inclusive") if len(extra) > 1 else [extra[0]] * 3
        out["shadow_extra_us"][key] = {"median": round(q[1], 1), "q1": round(q[0], 1), "q3": round(q[2], 1)}
        out[f"plain_{key}_median"] = round(statistics.median(r["plain"][key] for r in per_round), 1)
    # The shadow processes run behind the requests: on busy cores a shadowed round's jobs
    # may be scored during the next plain round. Idle otherwise, all they spent is the
    # shadowed requests' doing.
    out["shadow_processes_us_per_shadowed_request"] = round(
        sum(r[name]["shadow_processes_us"] for r in per_round for name in MODELS) / len(per_round), 1)
    return out


if __name__ == "__main__":
    main()
