"""CPU the Prometheus metrics cost one ``POST /predict`` request, with one worker and with
several (prometheus_client's multiprocess files).

    .venv/bin/python bench/metrics_cost.py [--requests 20000] [--rounds 5]

Builds the app in-process on the example repo (Redis) with bench/predict.py's logistic
regression, serves it a few requests (model loaded, metric children made), then makes the
metric calls of one 1-entity request ``--requests`` times: the HTTP middleware around an
app that only answers, the online read's histogram, the three stage histograms,
``observe_online`` and the predictions counter, with pending updates added every 250
requests (a flush every 0.25 s at 1,000 requests/s). Process CPU (all threads) minus the
same loop with the bare app and no metric calls: µs per request, median of the rounds,
for each mode in a process of its own (the mode is fixed at import). Prints one JSON object.
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
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

from harness import DRIVERS, serving_repo  # noqa: E402
from predict import MODELS, register_models  # noqa: E402

FLUSH_EVERY = 250


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # the repo, in the child process
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(asyncio.run(_measure(Path(args.measure), args.requests, args.rounds))))
        return
    results = {}
    with serving_repo("featurestore-bench-metrics-") as (folder, repo, env):
        register_models(repo, folder, env)
        for mode in ("one_worker", "several_workers"):
            child_env = dict(env)
            if mode == "several_workers":
                child_env["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="metrics-", dir=folder)
            out = subprocess.run([sys.executable, __file__, "--measure", str(repo), "--requests", str(args.requests),
                                  "--rounds", str(args.rounds)], env=child_env, cwd=repo, check=True,
                                 stdout=subprocess.PIPE, text=True).stdout
            results[mode] = json.loads(out.splitlines()[-1])
    print(json.dumps({"benchmark": "CPU of the metric calls of one POST /predict request (logreg, 1 entity)",
                      "requests": args.requests, "load_average": os.getloadavg()[0], "results": results}, indent=2))


async def _measure(repo: Path, requests: int, rounds: int) -> dict:
    from featurestore.config import load_config
    from featurestore.models.inputs import input_spec
    from featurestore.store import FeatureStore
    from monitoring import metric_batches
    from serving.app import create_app
    from serving.instrumentation import MetricsMiddleware, observe_online
    from serving.model_cache import VARIANT
    from serving.routes import predict

    store = FeatureStore(config=load_config(repo, env=os.environ))
    app = create_app(store, watch_interval=0)
    name, ids = MODELS["logreg"], DRIVERS[:1]
    body = json.dumps({"entities": {"driver_id": ids}}).encode()
    path = f"/predict/{name}"
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
             "headers": [(b"host", b"bench"), (b"content-length", str(len(body)).encode())],
             "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 2)}
    route = next(r for r in predict.router.routes if r.path == "/predict/{model:path}")
    start = {"type": "http.response.start", "status": 200, "headers": []}
    end = {"type": "http.response.body", "body": b"{}"}

    async def receive():
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message):
        if message["type"] == "http.response.start" and message["status"] != 200:
            raise SystemExit(f"/predict answered {message['status']}")

    async def answer(scope, receive, send):  # the app without its work: the router's route, an answer
        scope["route"] = route
        await send(start)
        await send(end)

    async with app.router.lifespan_context(app):
        for _ in range(20):
            await app(dict(scope), receive, send)
        state = app.state.serving
        served = await state.models.get(state.models.parse(name))
        spec = input_spec(served.version)
        plan, response = await state.read(spec.features, {"driver_id": ids}, spec.full_feature_names)
        now = store.clock()
        observe, count, observe_read = served.observe, served.count, state.online._observe
        timed = MetricsMiddleware(answer)

        async def loop(metrics: bool) -> float:
            began = time.process_time()
            call = timed if metrics else answer
            for i in range(requests):
                await call(dict(scope), receive, send)
                if metrics:
                    observe_read(0.0003)
                    observe["features"](0.0004)
                    observe["transform"](0.00006)
                    observe_online(plan, response, now)
                    observe["model"](0.0002)
                    count("ok", VARIANT)
                    if i % FLUSH_EVERY == 0:
                        metric_batches.flush()
            return time.process_time() - began

        per_request = []
        for _ in range(rounds):
            bare, metered = await loop(False), await loop(True)
            per_request.append((metered - bare) / requests * 1e6)
    return {"metrics_cpu_us": round(statistics.median(per_request), 2),
            "rounds": [round(v, 2) for v in per_request]}


if __name__ == "__main__":
    main()
