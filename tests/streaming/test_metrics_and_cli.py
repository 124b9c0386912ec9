"""The stream metrics (monitoring/streaming.py) and the `featurestore stream` command's checks."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest

from featurestore.cli.main import cli
from featurestore.cli import stream_command  # noqa: F401 - registers the command
from featurestore.streaming import BatchReport, FlushReport
from monitoring.streaming import PrometheusStreamObserver, StreamLagCollector, render_stream_lag

from .conftest import open_store, write_repo


def value(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_the_observer_counts_events_late_events_dead_letters_and_delays():
    before = (value("featurestore_stream_events_total", stream="s1", push_source="p"),
              value("featurestore_stream_late_events_total", feature_view="v1"),
              value("featurestore_stream_event_delay_seconds_count", stream="s1"))
    observer = PrometheusStreamObserver()
    observer.batch(BatchReport("s1", "p", events=10, reclaimed=2, duplicates=1, late={"v1": 3}, dead=1,
                               seconds=0.01, delays=(0.002, 0.004)))
    observer.flush(FlushReport("p", 10, 0.05))
    after = (value("featurestore_stream_events_total", stream="s1", push_source="p"),
             value("featurestore_stream_late_events_total", feature_view="v1"),
             value("featurestore_stream_event_delay_seconds_count", stream="s1"))
    assert [a - b for a, b in zip(after, before)] == [10, 3, 2]
    assert value("featurestore_stream_dead_letters_total", stream="s1") >= 1
    assert value("featurestore_stream_offline_rows_total", push_source="p") >= 10


def test_the_backlog_is_read_from_redis_at_scrape_time(redis_url, redis_project, redis_client, tmp_path, clock):
    stream = f"{redis_project}-trips"
    for i in range(3):
        redis_client.xadd(stream, {"n": i})
    redis_client.xgroup_create(stream, "featurestore", id="0")
    redis_client.xreadgroup("featurestore", "c", {stream: ">"}, count=1)
    registry = CollectorRegistry()
    registry.register(StreamLagCollector(redis_url, [stream], "featurestore"))
    text = generate_latest(registry).decode()
    assert f'featurestore_stream_lag{{group="featurestore",stream="{stream}"}} 2.0' in text
    assert f'featurestore_stream_pending{{group="featurestore",stream="{stream}"}} 1.0' in text
    assert f'featurestore_stream_length{{stream="{stream}"}} 3.0' in text
    repo = write_repo(tmp_path / "repo", redis_project, "redis", redis_url,
                      f"streaming:\n  streams: [{{stream: {stream}, push_source: trips_push}}]\n")
    with open_store(repo, clock) as store:
        assert b"featurestore_stream_pending" in render_stream_lag(store)
        from fastapi.testclient import TestClient

        from serving import create_app

        with TestClient(create_app(store)) as client:
            scraped = client.get("/metrics").text
        assert f'featurestore_stream_lag{{group="featurestore",stream="{stream}"}} 2.0' in scraped


def test_the_command_explains_a_missing_stream_configuration(tmp_path):
    repo = write_repo(tmp_path / "repo", "cli_test")
    result = CliRunner().invoke(cli, ["--repo", str(repo), "stream", "--metrics-port", "0"])
    assert result.exit_code == 1
    assert "error: featurestore stream needs a Redis" in result.output
    result = CliRunner().invoke(cli, ["--repo", str(repo), "stream", "--redis-url", "redis://localhost:1/0",
                                      "--stream", "trips"])
    assert result.exit_code == 1 and "STREAM=PUSH_SOURCE" in result.output


def test_public_names():
    import featurestore.streaming
    import monitoring.streaming

    assert set(featurestore.streaming.__all__) == {
        "EVENT_ID_COLUMN", "AddResult", "AggregateReader", "BatchReport", "FlushReport",
        "StreamObserver", "StreamSettings", "StreamSpec",
        "StreamWorker", "ViewLayout", "add_events", "aggregate", "load_offline_events",
    }
    for module in (featurestore.streaming, monitoring.streaming):
        for name in module.__all__:
            assert getattr(module, name) is not None


def test_the_server_counts_late_pushed_events(store):
    from datetime import timedelta

    from fastapi.testclient import TestClient

    from serving import create_app

    from .conftest import NOW

    before = value("featurestore_push_late_events_total", feature_view="trip_stats")
    times = [(NOW - timedelta(hours=2)).isoformat(), (NOW - timedelta(minutes=2)).isoformat()]
    df = {"driver_id": [7, 7], "event_timestamp": times, "fare": [1.0, 2.0], "distance": [1, 2], "city": ["a", "b"]}
    with TestClient(create_app(store)) as client:
        answer = client.post("/push", json={"push_source_name": "trips_push", "df": df, "to": "online"})
    assert answer.status_code == 200, answer.text
    assert value("featurestore_push_late_events_total", feature_view="trip_stats") == before + 1


@pytest.mark.parametrize("flags, addr", [([], "127.0.0.1"), (["--metrics-host", "0.0.0.0"], "0.0.0.0")])
def test_the_worker_metrics_listen_on_loopback_unless_told_otherwise(tmp_path, redis_url, redis_project, monkeypatch,
                                                                     flags, addr):
    import monitoring.streaming
    from featurestore.streaming.worker import StreamWorker

    listening = []
    monkeypatch.setattr(monitoring.streaming, "start_http_server",
                        lambda port, addr, registry: listening.append((addr, port)))
    monkeypatch.setattr(monitoring.streaming.REGISTRY, "register", lambda collector: None)
    monkeypatch.setattr(StreamWorker, "run", lambda self, stop: None)  # no loop: only the startup is under test
    repo = write_repo(tmp_path / "repo", redis_project, "redis", redis_url,
                      f"streaming:\n  streams: [{{stream: {redis_project}-s, push_source: trips_push}}]\n")
    CliRunner().invoke(cli, ["--repo", str(repo), "apply"])
    result = CliRunner().invoke(cli, ["--repo", str(repo), "stream", "--metrics-port", "9999", *flags])
    assert result.exit_code == 0, result.output
    assert listening == [(addr, 9999)]
