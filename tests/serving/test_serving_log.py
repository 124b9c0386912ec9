"""The serving log of ``/get-online-features``: rows of feature services whose
``logging_config`` is set, through the real app; and under several uvicorn workers,
nothing lost that is not counted and only whole files when a worker is killed."""

from __future__ import annotations

import os
import re
import signal
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from featurestore.errors import NotFoundError
from featurestore.scaffold import init_repo
from featurestore.serving_log.layout import FOLDER
from serving import create_app

from .conftest import NOW, open_store
from .served import Server, wait_for

SERVICES = '''

from featurestore import FileLoggingDestination, LoggingConfig

logged_v1 = FeatureService(
    name="logged_v1",
    features=[driver_hourly_stats[["conv_rate", "avg_daily_trips"]]],
    logging_config=LoggingConfig(sample_rate=1.0),
)
elsewhere_v1 = FeatureService(
    name="elsewhere_v1", features=[driver_hourly_stats[["acc_rate"]]],
    logging_config=LoggingConfig(destination=FileLoggingDestination(path="logs/elsewhere")),
)
sampled_v1 = FeatureService(
    name="sampled_v1", features=[driver_hourly_stats[["conv_rate"]]], logging_config=LoggingConfig(sample_rate=0.5),
)
'''
SERVING_LOG = "serving_log:\n  flush_seconds: 0.05\n"


def logged_repo(path: Path, extra_config: str = SERVING_LOG) -> Path:
    repo = init_repo(path, project=f"test_{uuid.uuid4().hex[:10]}", now=NOW)
    with open(repo / "features" / "driver_stats.py", "a") as f:
        f.write(SERVICES)
    with open(repo / "featurestore.yaml", "a") as f:
        f.write(extra_config)
    return repo


@pytest.fixture
def logged(tmp_path, clock):
    with open_store(logged_repo(tmp_path / "repo"), clock) as store:
        store.apply()
        store.materialize_incremental(NOW)
        app = create_app(store, watch_interval=0)
        with TestClient(app) as client:
            yield store, client, app.state.serving.serving_log.writer


def ask(client, service, ids, **headers):
    answer = client.post("/get-online-features", json={"feature_service": service, "entities": {"driver_id": ids}},
                         headers=headers)
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_a_logged_service_logs_keys_values_statuses_and_event_times_of_each_row(logged, clock):
    store, client, writer = logged
    written_before = rows_written(client, "logged_v1")  # the counter is process-wide: other tests' rows
    answer = ask(client, "logged_v1", [1001, 1002, 99999], **{"X-Request-ID": "req-1"})
    ask(client, "driver_activity_v1", [1001])  # no logging_config: not logged
    client.post("/get-online-features", json={"features": ["driver_hourly_stats:conv_rate"],
                                              "entities": {"driver_id": [1001]}})  # a feature list: not logged
    assert writer.flush(10)

    log = store.get_logs("logged_v1")
    assert log.num_rows == 3
    rows = log.to_pylist()
    assert {r["log_time"] for r in rows} == {NOW}
    assert {r["request_id"] for r in rows} == {"req-1"}
    assert {(r["model"], r["version"], r["variant"]) for r in rows} == {(None, None, "stable")}
    assert [r["driver_id"] for r in rows] == [1001, 1002, 99999]
    served = dict(zip(answer["metadata"]["feature_names"], answer["results"]))
    assert [r["conv_rate"] for r in rows] == pytest.approx(served["conv_rate"]["values"])
    assert [r["avg_daily_trips"] for r in rows] == served["avg_daily_trips"]["values"]
    assert [r["conv_rate__status"] for r in rows] == served["conv_rate"]["statuses"] == ["PRESENT", "PRESENT", "NOT_FOUND"]
    assert rows[2]["conv_rate__event_timestamp"] is None and rows[0]["conv_rate__event_timestamp"] <= NOW
    assert store.get_logs("driver_activity_v1").num_rows == 0  # a service without a log: empty
    assert writer.dropped == 0

    assert rows_written(client, "logged_v1") == written_before + 3


def rows_written(client, log: str) -> float:
    metrics = client.get("/metrics").text
    found = re.search(rf'featurestore_serving_log_rows_written_total\{{log="{log}"\}} (\S+)', metrics)
    return float(found.group(1)) if found else 0.0


def test_a_file_destination_holds_the_services_log(logged):
    store, client, writer = logged
    ask(client, "elsewhere_v1", [1001, 1002])
    writer.flush(10)
    assert len(list((store.repo_path / "logs" / "elsewhere").glob("date=*/*.parquet"))) == 1
    assert store.get_logs("elsewhere_v1").column("driver_id").to_pylist() == [1001, 1002]


def test_a_sample_rate_logs_about_that_share_of_requests(logged):
    store, client, writer = logged
    for _ in range(200):
        ask(client, "sampled_v1", [1001])
    writer.flush(10)
    assert 60 <= store.get_logs("sampled_v1").num_rows <= 140  # binomial(200, 0.5): 14 sd either side


def test_get_logs_names_the_close_matches_of_an_unknown_name_and_checks_times(logged):
    store, client, writer = logged
    with pytest.raises(NotFoundError, match="did you mean 'logged_v1'"):
        store.get_logs("loged_v1")
    with pytest.raises(Exception, match="not an ISO 8601 time"):
        store.get_logs("logged_v1", start="yesterday")
    with pytest.raises(Exception, match="is not valid"):
        store.get_logs("../escape")


def test_a_prediction_logs_keys_request_fields_inputs_and_answer_at_its_time(logged):
    store, client, writer = logged
    log = client.app.state.serving.serving_log
    plan = store.read_plan(["driver_hourly_stats:conv_rate"])
    for entities in ({"driver_id": [1001, 1002], "trip_km": [3.5, 1.0]},
                     [{"driver_id": 1001, "trip_km": 3.5}, {"driver_id": 1002, "trip_km": 1.0}]):
        response = store.get_online_features(["driver_hourly_stats:conv_rate"], entities)
        log.log_prediction("scorer", 3, plan.join_keys, response, entities, [0.25, 0.75], "p-1", variant="canary",
                           served_at=NOW.timestamp())
    writer.flush(10)
    rows = store.get_logs("scorer").to_pylist()
    assert len(rows) == 4
    for row, driver, km, score in zip(rows, [1001, 1002] * 2, [3.5, 1.0] * 2, [0.25, 0.75] * 2):
        assert (row["model"], row["version"], row["variant"], row["request_id"]) == ("scorer", 3, "canary", "p-1")
        assert (row["log_time"], row["driver_id"], row["trip_km"], row["prediction"]) == (NOW, driver, km, score)
        assert row["conv_rate__status"] == "PRESENT" and row["conv_rate"] is not None


def test_logging_off_logs_nothing(tmp_path, clock):
    repo = logged_repo(tmp_path / "repo", "serving_log:\n  enabled: false\n")
    with open_store(repo, clock) as store:
        store.apply()
        store.materialize_incremental(NOW)
        with TestClient(create_app(store, watch_interval=0)) as client:
            ask(client, "logged_v1", [1001])
        assert not (store.config.offline_store / FOLDER).exists()


def metric_sum(text: str, name: str) -> float:
    return sum(float(v) for v in re.findall(rf'^{name}\{{log="logged_v1"[^}}]*\}} (\S+)$', text, re.M))


@pytest.mark.integration
def test_several_workers_log_without_clashing_count_every_row_and_leave_whole_files_when_killed(tmp_path, clock):
    repo = logged_repo(tmp_path / "repo", "serving_log:\n  flush_seconds: 0.05\n  queue_rows: 300\n")
    with open_store(repo, clock) as store:
        store.apply()
        store.materialize_incremental(NOW)
    server = Server(repo, "--workers", "2", "--no-access-log", "--watch-interval", "0",
                    env={"PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics")})
    # A connection per request, so both workers take some; one client for all of them, as
    # building a client per request costs more than the request. `Connection: close`, not a
    # pool without keep-alive: httpcore's pool can close an idle connection another thread
    # has just been handed (the request then fails with EBADF).
    http = httpx.Client(base_url=f"http://127.0.0.1:{server.port}", headers={"Connection": "close"})
    try:
        def send(i: int) -> None:
            answer = http.post("/get-online-features", json={
                "feature_service": "logged_v1", "entities": {"driver_id": [1001, 1002, 1003, 1004, 1005]}})
            assert answer.status_code == 200

        def counted() -> float:
            text = server.client.get("/metrics").text
            return (metric_sum(text, "featurestore_serving_log_rows_written_total"),
                    metric_sum(text, "featurestore_serving_log_rows_dropped_total"))

        def writers() -> set[str]:  # the pids in the file names: each worker writes its own files
            folder = store.config.offline_store / FOLDER / "logged_v1"
            return {f.name.split("-")[1] for f in folder.rglob("*.parquet")}

        # The kernel hands each new connection to whichever worker accepts first: on a busy
        # machine one worker can take them all for a while, so requests are sent 300 at a
        # time until both workers have written (each time, every row counted first).
        sent, deadline = 0, time.monotonic() + 60
        while True:
            with ThreadPoolExecutor(8) as pool:
                list(pool.map(send, range(300)))
            sent += 300 * 5
            wait_for(lambda: sum(counted()) == sent, "every row to be written or counted as dropped", 30)
            if len(writers()) == 2:
                break
            assert time.monotonic() < deadline, f"only one worker wrote in 60 s: {writers()}"
        written, dropped = counted()
        with open_store(repo, clock) as store:
            assert store.get_logs("logged_v1").num_rows == written

        # A worker killed while it logs leaves only whole files behind.
        workers = [int(p) for p in Path(f"/proc/{server.proc.pid}/task/{server.proc.pid}/children").read_text().split()]
        with ThreadPoolExecutor(8) as pool:
            pending = [pool.submit(_quietly, send, i) for i in range(400)]
            time.sleep(0.3)
            os.kill(workers[0], signal.SIGKILL)
            for p in pending:
                p.result()
    finally:
        http.close()
        server.stop()
    files = list((store.config.offline_store / FOLDER / "logged_v1").rglob("*.parquet"))
    assert all(pq.read_table(f).num_rows > 0 for f in files)
    with open_store(repo, clock) as store:
        assert store.get_logs("logged_v1").num_rows >= written


def _quietly(send, i):
    try:
        send(i)
    except Exception:  # the killed worker's connections fail; the point is the files
        pass
