"""``ModelProcess``: versions loaded by URI from the registry and called in a process of
their own; a model that raises, one that cannot be loaded and one that kills the process
each fail only their call, and the next call is answered; a call past its deadline stops
the process (for a loaded version, the deadline runs from the send)."""

from __future__ import annotations

import os
import time
from functools import partial

import pyarrow as pa
import pytest

from featurestore.models.process import ModelCallFailed, ModelProcess
from featurestore.scaffold import init_repo
from featurestore.store import FeatureStore

MODELS = '''
import os
import time


class Scaled:
    def __init__(self, factor=1.0, fail=False, die=False, hang=False, hold=None):
        self.factor, self.fail, self.die, self.hang, self.hold = factor, fail, die, hang, hold

    def predict(self, features):
        if self.die:
            os._exit(3)
        while self.hang or (self.hold is not None and os.path.exists(self.hold)):
            time.sleep(0.05)
        if self.fail:
            raise ValueError("no prediction for these rows")
        return [v * self.factor for v in features.column("conv_rate").to_pylist()]
'''


@pytest.fixture
def store(tmp_path):
    repo = init_repo(tmp_path / "repo", project="model_process")
    (repo / "process_models.py").write_text(MODELS)
    with FeatureStore(repo) as store:
        store.apply()
        for name, params in (("double", {"factor": 2.0}), ("raises", {"fail": True}), ("dies", {"die": True}),
                             ("hangs", {"hang": True}), ("held", {"hold": str(tmp_path / "hold")})):
            store.models.register(name, "process_models:Scaled", flavor="python",
                                  features=["driver_hourly_stats:conv_rate"], output=("prediction", "Float64"),
                                  flavor_options={"params": params})
        yield store


def test_a_model_process_calls_versions_by_uri_and_outlives_their_failures(store):
    rows = pa.table({"conv_rate": pa.array([0.5, 0.25, None], pa.float64())}).slice(0, 2)
    models = ModelProcess(partial(FeatureStore, config=store.config))
    try:
        predictions, seconds = models.predict("double/1", rows)
        assert predictions == [1.0, 0.5] and seconds >= 0
        pid = models.pid
        assert pid != os.getpid()

        with pytest.raises(ModelCallFailed, match="no prediction for these rows") as raised:
            models.predict("raises/1", rows)
        assert raised.value.loaded  # the model's own failure: its rows may be tried one by one
        with pytest.raises(ModelCallFailed, match="double/7 cannot be loaded") as raised:
            models.predict("double/7", rows)
        assert not raised.value.loaded
        assert models.pid == pid  # neither took the process down

        with pytest.raises(ModelCallFailed, match="died while calling dies/1"):
            models.predict("dies/1", rows)
        assert models.predict("double/1", rows)[0] == [1.0, 0.5]  # in a new process
        assert models.pid != pid
    finally:
        models.close()
    assert models.pid is None


def test_a_call_past_its_deadline_stops_the_process_and_the_next_call_is_answered(store):
    rows = pa.table({"conv_rate": pa.array([0.5], pa.float64())})
    models = ModelProcess(partial(FeatureStore, config=store.config))
    try:
        # Starting the process and loading the version are not the call: a short deadline holds.
        assert models.predict("double/1", rows, deadline=0.5)[0] == [1.0]
        pid = models.pid
        with pytest.raises(ModelCallFailed, match="stopped: hangs/1 did not answer within 0.5 s") as raised:
            models.predict("hangs/1", rows, deadline=0.5)
        assert raised.value.late and not raised.value.loaded
        assert models.pid is None
        with pytest.raises(ProcessLookupError):  # killed, not left running
            os.kill(pid, 0)
        assert models.predict("double/1", rows, deadline=0.5)[0] == [1.0]
        assert models.pid != pid
    finally:
        models.close()


def test_a_loaded_version_that_hangs_is_stopped_at_its_deadline_from_the_send(store, tmp_path):
    """A call is one message each way: for a version the process has loaded, no message says
    when the call begins, and the deadline runs from the send."""
    rows = pa.table({"conv_rate": pa.array([0.5], pa.float64())})
    models = ModelProcess(partial(FeatureStore, config=store.config))
    try:
        assert models.predict("held/1", rows, deadline=0.5)[0] == [0.5]  # loaded now
        (tmp_path / "hold").touch()
        began = time.monotonic()
        with pytest.raises(ModelCallFailed, match="stopped: held/1 did not answer within 0.5 s") as raised:
            models.predict("held/1", rows, deadline=0.5)
        assert raised.value.late and time.monotonic() - began < 5
        (tmp_path / "hold").unlink()
        # A new process has nothing loaded: its load is not timed against the deadline.
        assert models.predict("held/1", rows, deadline=0.5)[0] == [0.5]
    finally:
        models.close()
