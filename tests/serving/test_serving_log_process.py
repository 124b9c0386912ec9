"""A server worker's serving log is written by a process of its own: the worker hands its
rows over, the files carry the worker's process id, and stopping the server writes every
row it logged (through the real app)."""

from __future__ import annotations

import multiprocessing
import os

from fastapi.testclient import TestClient

from featurestore.serving_log.process import ServingLogProcess
from serving import create_app

from .conftest import NOW, open_store
from .served import wait_for
from .test_serving_log import ask, logged_repo


def test_a_worker_hands_its_rows_to_its_serving_log_process_and_stopping_writes_them_all(tmp_path, clock):
    repo = logged_repo(tmp_path / "repo", "serving_log:\n  flush_seconds: 3600\n")  # written only when stopping
    with open_store(repo, clock) as store:
        store.apply()
        store.materialize_incremental(NOW)
        app = create_app(store, watch_interval=0)
        with TestClient(app) as client:
            for _ in range(20):
                ask(client, "logged_v1", [1001, 1002])
            writer = app.state.serving.serving_log.writer
            assert isinstance(writer, ServingLogProcess)
            wait_for(lambda: writer.held == 40, "the rows handed to the serving log process", 30)
            (process,) = [p for p in multiprocessing.active_children() if p.name == "featurestore-serving-log-process"]
            assert process.pid != os.getpid() and store.get_logs("logged_v1").num_rows == 0
        assert not process.is_alive()
        assert (writer.written, writer.dropped) == (40, 0)
        assert store.get_logs("logged_v1").num_rows == 40
        files = list(store.serving_log_folder("logged_v1").rglob("*.parquet"))
        assert {f.name.split("-")[1] for f in files} == {str(os.getpid())}
