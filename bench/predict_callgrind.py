"""Instructions per ``POST /predict`` request, ours and the raw endpoint, in process, under callgrind.

    .venv/bin/python bench/predict_callgrind.py [--requests 200] [--cases logreg_1,gbm_1,logreg_10,gbm_10]
                                                [--keep FOLDER]

Wall and CPU time on a shared machine move with its load; instruction counts do not. The
apps of bench/predict.py (ours from ``create_app``, the raw endpoint from its source) run
in a process under ``valgrind --tool=callgrind``, one process per app, and are called
in process as uvicorn calls them (an ASGI ``http`` scope, the body in one message), so
the server's own HTTP parsing, the same for both, is left out. Per case: 300 requests to
warm up (a model goes inline after 50 calls; its timeout and inline budget are raised to
60 s and 6 s, since under callgrind a call takes ~50x its time), then the counts are zeroed, ``--requests``
requests made, the metric updates added (``metric_batches.flush``, otherwise on a timer)
and the counts dumped (all threads; the registry watch is off). Before each measure the
process's objects are frozen (``gc.freeze``), for both apps. For ours, one more figure: instructions per registry watch
tick (``ServingState._check_registry_and_models``, with nothing moved). The serving log
is off (``FEATURESTORE_SERVING_LOG=off``; bench/serving_log.py measures it).

The marks are callgrind's client requests (``CALLGRIND_ZERO_STATS``,
``CALLGRIND_DUMP_STATS_AT``), from a few lines of C compiled at start: it needs valgrind
with its headers (``valgrind/callgrind.h``) and a C compiler. Prints one JSON object:
per case, thousands of instructions per request, ours, raw and their ratio.
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
import shutil  # noqa: E402
import subprocess  # noqa: E402

WARMUP = 300
WATCH_TICKS = 50
_MARKS_C = r"""
#include <valgrind/callgrind.h>
void zero(void) { CALLGRIND_ZERO_STATS; }
void dump(const char *name) { CALLGRIND_DUMP_STATS_AT(name); }
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200, help="measured requests per case")
    parser.add_argument("--cases", default="logreg_1,gbm_1,logreg_10,gbm_10")
    parser.add_argument("--apps", default="ours,raw")
    parser.add_argument("--keep", type=Path, help="copy the callgrind dumps into this folder (for callgrind_annotate)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        asyncio.run(_child(args.child, args.cases.split(","), args.requests))
        return

    from harness import serving_repo
    from predict import register_models

    results: dict = {}
    with serving_repo("featurestore-bench-predict-callgrind-") as (folder, repo, env):
        env["FEATURESTORE_SERVING_LOG"] = "off"
        env = register_models(repo, folder, env)
        (folder / "marks.c").write_text(_MARKS_C)
        subprocess.run(["cc", "-O1", "-shared", "-fPIC", "-o", folder / "marks.so", folder / "marks.c"], check=True)
        env.update(BENCH_MARKS=str(folder / "marks.so"), BENCH_REPO=str(repo), BENCH_FOLDER=str(folder))
        for app in args.apps.split(","):
            out = folder / f"callgrind.{app}"
            subprocess.run(["valgrind", "-q", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable,
                            __file__, "--child", app, "--cases", args.cases, "--requests", str(args.requests)],
                           env=env, cwd=repo, check=True)
            for dump in sorted(folder.glob(f"callgrind.{app}.*")):
                if args.keep:
                    args.keep.mkdir(parents=True, exist_ok=True)
                    shutil.copy(dump, args.keep / dump.name)
                name, total = _dump_total(dump)
                per = WATCH_TICKS if name == "watch" else args.requests
                results.setdefault(name, {})[app] = round(total / per / 1000)
    for figures in results.values():
        if "ours" in figures and "raw" in figures:
            figures["ours_vs_raw"] = round(figures["ours"] / figures["raw"], 3)
    print(json.dumps({"benchmark": "instructions per POST /predict request (thousands), in process, callgrind",
                      "requests": args.requests, "results": results}, indent=2))


def _dump_total(path: Path) -> tuple[str, int]:
    text = path.read_text()
    name = re.search(r"^desc: Trigger: Client Request: (\S+)", text, re.M).group(1)
    return name, int(re.search(r"^(?:summary|totals): (\d+)", text, re.M).group(1))


async def _child(app_name: str, cases: list[str], requests: int) -> None:
    import ctypes
    import importlib.util

    from harness import post
    from predict import MODELS, SHAPES

    from monitoring import metric_batches

    marks = ctypes.CDLL(os.environ["BENCH_MARKS"])
    # Metric updates are added to prometheus_client at the end of each measure, not on a
    # timer (whose ticks would land in a run in proportion to its slowed-down wall time).
    metric_batches.FLUSH_SECONDS = 24 * 3600.0
    if app_name == "ours":
        from serving.app import create_app

        app = create_app(os.environ["BENCH_REPO"], watch_interval=0)
        # Under callgrind a call takes ~50x its time: budgets that let the models run
        # inline (as they do at full speed), so that their calls are counted as served.
        models = app.state.serving.models
        models.timeout, models.inline_budget = 60.0, 6.0
    else:
        from predict import RAW_APP

        source = Path(os.environ["BENCH_FOLDER"]) / "bench_raw_app.py"
        source.write_text(RAW_APP)
        spec = importlib.util.spec_from_file_location("bench_raw_app", source)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        app = module.app
    async with app.router.lifespan_context(app):
        if app_name == "ours":  # loaded before any measure (the start loads them in the background)
            for model in {case.split("_")[0] for case in cases}:
                await app.state.serving.models.get(MODELS[model])
        for case in cases:
            model, shape = case.split("_")
            path = f"/predict/{MODELS[model]}"
            body = post(0, path, {"entities": {"driver_id": SHAPES[shape]}}).split(b"\r\n\r\n", 1)[1]
            for _ in range(WARMUP):
                await _call(app, path, body)
            if app_name == "ours" and not (await app.state.serving.models.get(MODELS[model])).gate.inline:
                raise RuntimeError(f"{case}: the model is not called inline after {WARMUP} requests")
            _settle()
            marks.zero()
            for _ in range(requests):
                await _call(app, path, body)
            metric_batches.flush()
            marks.dump(case.encode())
        if app_name == "ours":
            state = app.state.serving
            _settle()
            marks.zero()
            for _ in range(WATCH_TICKS):
                state._check_registry_and_models()
            marks.dump(b"watch")


def _settle() -> None:
    """Pending metric updates added, and what the process holds so far frozen (as ``featurestore
    serve`` freezes its startup): otherwise a full collection walking the libraries' objects
    (~70M instructions) lands in one measure or another by chance, for either app."""
    import gc

    from monitoring import metric_batches

    metric_batches.flush()
    gc.collect()
    gc.freeze()


async def _call(app, path: str, body: bytes) -> bytes:
    """One request as uvicorn hands it to the app; its answer's body (a 200 or this raises)."""
    scope = {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": "1.1",
             "method": "POST", "scheme": "http", "path": path, "raw_path": path.encode(), "root_path": "",
             "query_string": b"", "headers": [(b"host", b"127.0.0.1"), (b"content-type", b"application/json"),
                                               (b"content-length", str(len(body)).encode())],
             "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000), "state": {}}
    sent: list[dict] = []
    messages = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> dict:
        if messages:
            return messages.pop()
        await asyncio.Event().wait()  # the client stays

    async def send(message: dict) -> None:
        sent.append(message)

    await app(scope, receive, send)
    if sent[0]["status"] != 200:
        raise RuntimeError(f"{path}: {sent[0]['status']} {sent[1].get('body', b'')[:300]!r}")
    return b"".join(m.get("body", b"") for m in sent[1:])


if __name__ == "__main__":
    main()
