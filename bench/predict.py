"""Prediction serving benchmark: ``POST /predict/{model}`` against a hand-written endpoint.

    .venv/bin/python bench/predict.py [--workers 1,2] [--models logreg,gbm] [--seconds 10]

Sets up the example repo on a Redis online store (bench/harness.py: ``serving_repo``) and
registers two models over its three driver features (conv_rate, acc_rate,
avg_daily_trips), each the ``champion`` of its name:

- ``bench_logreg``: a scikit-learn logistic regression (the ``sklearn`` flavor, skops format);
- ``bench_gbm``: a 100-tree LightGBM classifier (the ``lightgbm`` flavor).

Then for each worker count it starts two servers side by side:

- ``ours``: ``featurestore serve --workers N --no-access-log``, called at ``/predict/{model}``
  with ``{"entities": {"driver_id": [...]}}``;
- ``raw``: the physical-limit proxy, a minimal FastAPI app under the same uvicorn that
  does the same Redis lookup with redis-py, puts the values in a numpy matrix and makes
  the same model call (``predict_proba(X)[:, 1]``, ``Booster.predict(X, num_threads=1)``)
  on the same model files; no registry, no signature check, no statuses, no metrics, no validation.

Per model and request shape (1 entity, 10 entities), after checking that both give the
same predictions: p50/p99 latency at concurrency 1, then requests/s at concurrency 16, in
alternating rounds (bench/harness.py: ``compare``). Prints one JSON object. Targets
(issue 11): p99 <= 1.3x raw at concurrency 1, requests/s >= 0.8x raw at concurrency 16.
"""

from __future__ import annotations

# Run as a script, this file's folder comes first on sys.path, and bench/http.py would hide
# the standard library's ``http`` package from everything imported below: the folder goes last.
import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE] + [str(_HERE)]

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402

from harness import DRIVERS, RAW_READ, REFS, add_load_options, run, serving_repo  # noqa: E402

SHAPES = {"1": DRIVERS[:1], "10": (DRIVERS * 2)[:10]}
MODELS = {"logreg": "bench_logreg", "gbm": "bench_gbm"}

RAW_APP = RAW_READ + '''
import lightgbm
import numpy as np
import skops.io

_logreg_file = os.environ["BENCH_LOGREG"]
logreg = skops.io.load(_logreg_file, trusted=skops.io.get_untrusted_types(file=_logreg_file))
gbm = lightgbm.Booster(model_file=os.environ["BENCH_GBM"])
CALLS = {"bench_logreg": lambda X: logreg.predict_proba(X)[:, 1],
         "bench_gbm": lambda X: gbm.predict(X, num_threads=1)}  # as the flavor predicts a few rows


@app.post("/predict/{model}")
async def raw(model: str, request: Request) -> Response:
    ids = json.loads(await request.body())["entities"]["driver_id"]
    X = np.array(read(ids), dtype=np.float64).T  # None becomes NaN
    return Response(json.dumps({"predictions": CALLS[model](X).tolist()}), media_type="application/json")
'''


def register_models(repo: Path, folder: Path, env: dict) -> dict:
    """Fit both models on synthetic driver features, register each as its name's champion,
    and save the same models as native files for the raw endpoint; the raw app's environment."""
    import lightgbm
    import numpy as np
    import skops.io
    from sklearn.linear_model import LogisticRegression

    from featurestore.config import load_config
    from featurestore.store import FeatureStore

    rng = np.random.default_rng(7)
    X = np.column_stack([rng.random(5000), rng.random(5000), rng.integers(0, 1000, 5000)]).astype(np.float64)
    y = (X[:, 0] + X[:, 1] + X[:, 2] / 1000 + rng.normal(0, 0.3, 5000) > 1.5).astype(np.int64)
    logreg = LogisticRegression(max_iter=1000).fit(X, y)
    gbm = lightgbm.LGBMClassifier(n_estimators=100, verbose=-1).fit(X, y)
    skops.io.dump(logreg, folder / "logreg.skops")
    gbm.booster_.save_model(str(folder / "gbm.txt"))
    with FeatureStore(config=load_config(repo, env=env)) as store:
        for name, model, flavor in ((MODELS["logreg"], logreg, "sklearn"), (MODELS["gbm"], gbm, "lightgbm")):
            version = store.models.register(name, model, flavor=flavor, features=REFS,
                                            output=("completed", "Float64"))
            store.models.set_alias(name, "champion", version.version)
    return {**env, "BENCH_LOGREG": str(folder / "logreg.skops"), "BENCH_GBM": str(folder / "gbm.txt")}


def check_same_predictions(ours: bytes, raw: bytes) -> None:
    """Both endpoints must give the same predictions (else the comparison is moot)."""
    ours_p, raw_p = json.loads(ours)["predictions"], json.loads(raw)["predictions"]
    if len(ours_p) != len(raw_p) or not all(math.isclose(a, b, rel_tol=1e-9) for a, b in zip(ours_p, raw_p)):
        sys.exit(f"ours and raw disagree:\n{ours_p}\n{raw_p}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_load_options(parser)
    parser.add_argument("--models", default="logreg,gbm", help="models to run, comma-separated (logreg, gbm)")
    parser.add_argument("--shapes", default="1,10", help="entities per request, comma-separated (1, 10)")
    parser.add_argument("--serving-log", choices=("on", "off"), default="on",
                        help="whether our server logs each prediction (docs/monitoring.md; bench/serving_log.py "
                             "compares the two)")
    args = parser.parse_args()
    cases = {f"{model}_{shape}": (f"/predict/{MODELS[model]}", {"entities": {"driver_id": SHAPES[shape]}})
             for model in args.models.split(",") for shape in args.shapes.split(",")}
    with serving_repo("featurestore-bench-predict-") as (folder, repo, env):
        env["FEATURESTORE_SERVING_LOG"] = args.serving_log
        raw_env = register_models(repo, folder, env)
        run(args, title="POST /predict/{model}, Redis online store, loopback", repo=repo, env=env,
            raw=(folder, RAW_APP, raw_env), cases=cases, check=check_same_predictions, max_p99=1.3, min_rps=0.8)


if __name__ == "__main__":
    main()
