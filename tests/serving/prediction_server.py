"""A real ``featurestore serve`` on Redis with models to predict with, for the /predict and
/v2 tests: the example repo trained by its ``train.py`` (``driver_model``) plus test
models that misbehave on purpose, from ``served_models.py`` written into the repo."""

from __future__ import annotations

import importlib.util
import textwrap
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from featurestore import FeatureStore
from featurestore.scaffold import init_repo

from .conftest import Clock, open_store, redis_cleanup
from .served import Server, wait_for

SLOW_TIMEOUT = 0.5
# The rollout tests' held shadow candidates wait for the test, longer than a call's deadline
# in the serving log's process (featurestore/serving_log/shadow.py) would let them at the default timeout;
# hung_shadow's is as short as it gets (MIN_DEADLINE).
HELD_TIMEOUTS = "held_shadow: 60, full_shadow: 60, hung_shadow: 0.05"
# rowwise_shadow's candidate takes ROW_SECONDS a row: one request's call is within its timeout,
# a batch of five requests' is not.
ROW_SECONDS, ROWWISE_TIMEOUT = 0.05, 0.2

MODELS = '''
"""Models for the prediction server tests (the python flavor imports them from the repo)."""

import threading
import time
from pathlib import Path


class Scaled:
    """conv_rate times ``factor``; each construction (a load) appends a line to ``loads``."""

    def __init__(self, factor=1.0, loads="", flag="", seconds=0.0, fail=False):
        if flag and Path(flag).exists():
            raise RuntimeError("the flag file is there")
        if loads:
            with open(loads, "a") as out:
                out.write(f"{factor}\\n")
        self.factor, self.seconds, self.fail = factor, seconds, fail

    def predict(self, features):
        if self.fail:
            raise ValueError("no prediction for these rows")
        time.sleep(self.seconds)
        return [None if v is None else round(v * self.factor, 4) for v in features.column("conv_rate").to_pylist()]


class Where:
    """Per row 1.0 when called on a model runner thread, 0.0 on any other (the event loop's).
    While the file ``sleep_flag`` exists, a call first notes its thread's name in ``threads``
    and sleeps as many seconds as the flag says (fast calls touch no file: a write can wait)."""

    def __init__(self, sleep_flag, threads):
        self.sleep_flag, self.threads = Path(sleep_flag), threads

    def predict(self, features):
        name = threading.current_thread().name
        if self.sleep_flag.exists():
            with open(self.threads, "a") as out:
                out.write(name + "\\n")
            time.sleep(float(self.sleep_flag.read_text()))
        return [1.0 if name.startswith("featurestore-model-") else 0.0] * features.num_rows


class Noisy:
    """A prediction per row drawn from normal(``shift``, 1), the same sequence after each
    load (``seed``), whatever the features; each call sleeps ``seconds`` (and ``row_seconds``
    a row), and every
    ``fail_every``-th call raises: a stand-in for a candidate that is good, shifted, slow
    or failing on a share of requests. While the file ``hold`` exists, a call waits; while
    ``die`` exists, a call ends its process. A call writes its process's scheduling policy
    to the file ``policy``, when given."""

    def __init__(self, shift=0.0, seed=0, seconds=0.0, fail_every=0, hold="", die="", policy="", row_seconds=0.0):
        import random
        import threading

        self.random, self.lock, self.calls = random.Random(seed), threading.Lock(), 0
        self.shift, self.seconds, self.fail_every, self.hold, self.die = shift, seconds, fail_every, hold, die
        self.policy, self.row_seconds = policy, row_seconds

    def predict(self, features):
        if self.policy:
            import os

            Path(self.policy).write_text(str(os.sched_getscheduler(0)))
        if self.die and Path(self.die).exists():
            import os

            os._exit(3)
        while self.hold and Path(self.hold).exists():
            time.sleep(0.01)
        with self.lock:
            self.calls += 1
            failing = self.fail_every and self.calls % self.fail_every == 0
            answer = [self.random.gauss(self.shift, 1.0) for _ in range(features.num_rows)]
        time.sleep(self.seconds + self.row_seconds * features.num_rows)
        if failing:
            raise ValueError("every so often this model fails")
        return answer
'''


@dataclass
class PredictionServer:
    server: Server
    repo: Path
    clock: Clock
    env: dict
    loads: Path   # one line per load of a model made with loads=...
    flag: Path    # while it exists, ``flaky`` fails to load (flaky/2 is loaded by nothing else)
    sleep_flag: Path  # while it exists, ``moody`` and ``threaded`` sleep the seconds it holds per call
    threads: Path     # and note in this file the thread each such call ran on

    @property
    def client(self):
        return self.server.client

    def store(self) -> FeatureStore:
        return open_store(self.repo, self.clock, env=self.env)


def start(tmp: Path, redis_url: str) -> PredictionServer:
    clock = Clock(datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0))
    repo = init_repo(tmp / "repo", project=f"test_{uuid.uuid4().hex[:10]}", now=clock.now)
    (repo / "served_models.py").write_text(MODELS)
    config = repo / "featurestore.yaml"
    config.write_text(config.read_text() + textwrap.dedent(f"""\
        serving:
          model_cache_size: 3
          model_timeouts: {{slow: {SLOW_TIMEOUT}, moody: {SLOW_TIMEOUT}, {HELD_TIMEOUTS}, rowwise_shadow: {ROWWISE_TIMEOUT}}}
          inline_call_budgets_ms: {{threaded: 0}}
        """))
    env = {"FEATURESTORE_REDIS_URL": redis_url}
    loads, flag, sleep_flag, threads = tmp / "loads.txt", tmp / "flag", tmp / "sleep", tmp / "threads.txt"
    with open_store(repo, clock, env=env) as store:
        store.apply()
        store.materialize_incremental(clock.now)
        _train(repo, store)
        ref = ["driver_hourly_stats:conv_rate"]
        for name, params in (("scaled", {"factor": 1.0, "loads": str(loads)}), ("raises", {"fail": True}),
                             ("slow", {"seconds": 5.0}), ("flaky", {"flag": str(flag)})):
            version = store.models.register(name, "served_models:Scaled", flavor="python", features=ref,
                                            output=("prediction", "Float64"), flavor_options={"params": params})
            store.models.set_alias(name, "champion", version.version)
        for name, params in (("scaled", {"factor": 2.0, "loads": str(loads)}), ("flaky", {"flag": str(flag)})):
            store.models.register(name, "served_models:Scaled", flavor="python", features=ref,  # version 2
                                  output=("prediction", "Float64"), flavor_options={"params": params})
        for name in ("moody", "threaded"):  # no alias: nothing loads them but their tests
            store.models.register(name, "served_models:Where", flavor="python", features=ref,
                                  output=("prediction", "Float64"),
                                  flavor_options={"params": {"sleep_flag": str(sleep_flag), "threads": str(threads)}})
        store.models.register("strict", "served_models:Scaled", flavor="python", features=ref, on_missing="error",
                              output=("prediction", "Float64"), flavor_options={"params": {}})
    server = Server(repo, "--workers", "1", "--no-access-log", "--watch-interval", "0.5", env=env)
    wait_for(lambda: server.client.get("/ready").status_code == 200, "the server to be ready")
    return PredictionServer(server, repo, clock, env, loads, flag, sleep_flag, threads)


def stop(served: PredictionServer, redis_url: str) -> str:
    output = served.server.stop()
    with served.store() as store:
        redis_cleanup(redis_url, store.project)
    return output


def _train(repo: Path, store: FeatureStore) -> None:
    """The example repo's train.py: driver_model/1, champion (imported the way python runs it)."""
    spec = importlib.util.spec_from_file_location(f"train_{uuid.uuid4().hex[:8]}", repo / "train.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.train(store)
