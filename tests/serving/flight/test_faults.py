"""Bad uploads, clients that leave mid-stream, more clients than engine slots, and keys."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
import time

import pyarrow as pa
import pyarrow.flight as flight
import pytest

from featurestore import FeatureStore
from featurestore.errors import AuthError, BusyError, InputError
from featurestore.remote.wire import encode_command

from ..conftest import REFS
from .conftest import entities, serve_flight

#: About 2 MB of answer, read by a client with a small receive window (gRPC's window growth
#: off): the server can send only as fast as the client reads, so it is still sending.
BIG = dict(n=2000, payload=1000)
SLOW = [("grpc.http2.bdp_probe", 0)]


def wait_until(check, what: str, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.02)
    pytest.fail(f"gave up waiting for {what}")


def exchange_raw(server, send) -> flight.FlightError:
    """An exchange whose upload ``send(writer)`` writes by hand; the error the server answered."""
    client = flight.FlightClient(server.url)
    descriptor = flight.FlightDescriptor.for_command(encode_command("get_historical_features", features=REFS))
    writer, reader = client.do_exchange(descriptor)
    send(writer)
    writer.done_writing()
    with pytest.raises(flight.FlightError) as raised:
        reader.read_all()
    try:
        writer.close()
    except flight.FlightError:
        pass
    client.close()
    return raised.value


def test_an_upload_that_is_not_arrow_is_refused_saying_what_to_send(store):
    with serve_flight(store) as server:
        error = exchange_raw(server, lambda w: w.write_metadata(b"driver_id,event_timestamp\n1001,2024-05-01"))
    assert json.loads(error.extra_info)["type"] == "InputError"
    assert "is not Arrow record batches" in str(error) and "send the entity set as an Arrow table" in str(error)


def test_an_upload_over_the_limit_is_refused_naming_the_setting(store):
    with serve_flight(store, max_upload_bytes=10_000) as server, FeatureStore.remote(server.url) as remote:
        with pytest.raises(InputError, match=r"larger than the server's limit of 10000 bytes \(flight.max_upload_bytes"):
            remote.get_historical_features(entities(2000), REFS).to_arrow()
        assert remote.get_historical_features(entities(10), REFS).to_arrow().num_rows == 10  # still serving


def test_an_upload_without_the_timestamp_column_names_the_columns(store):
    with serve_flight(store) as server:
        error = exchange_raw(server, lambda w: (w.begin(pa.schema([("driver_id", pa.int64())])),
                                                w.write_table(pa.table({"driver_id": [1001]}))))
    assert "has no timestamp column 'event_timestamp'; its columns are ['driver_id']: add it" in str(error)


#: A client in a process of its own: it starts a big training set, reads one batch, says
#: so, then waits to be killed (a notebook kernel that dies, a laptop that goes away).
LEAVER = """
import sys, time
import pyarrow as pa
from featurestore import FeatureStore
url, n = sys.argv[1], int(sys.argv[2])
rows = pa.table({"driver_id": [1001 + i % 5 for i in range(n)],
                 "event_timestamp": pa.array([1714564800000000] * n, pa.timestamp("us", "UTC")),
                 "payload": ["x" * 1000] * n})
remote = FeatureStore.remote(url, grpc_options=[("grpc.http2.bdp_probe", 0)])
reader = remote.get_historical_features(rows, ["driver_hourly_stats:conv_rate"]).to_reader()
reader.read_next_batch()
print("reading", flush=True)
time.sleep(60)
"""


def test_a_client_that_leaves_mid_stream_frees_its_slot(store, caplog):
    caplog.set_level(logging.INFO, logger="featurestore.flight")
    n = BIG["n"]
    with serve_flight(store, slots=1, slot_timeout=5, batch_rows=10) as server:
        leaver = subprocess.Popen([sys.executable, "-c", LEAVER, server.url, str(n)], stdout=subprocess.PIPE, text=True)
        try:
            assert leaver.stdout.readline().strip() == "reading"
            assert server.slots.in_use == 1  # the server is still sending, as fast as the client reads
        finally:
            leaver.kill()
            leaver.wait()
        wait_until(lambda: server.slots.in_use == 0, "the slot to be released")
        left = [r.getMessage() for r in caplog.records if "the client left after" in r.getMessage()]
        assert left and int(left[0].split("after ")[1].split()[0]) < n
        with FeatureStore.remote(server.url) as remote:  # the one slot serves the next client at once
            assert remote.get_historical_features(entities(5), REFS).to_arrow().num_rows == 5


def test_more_clients_than_slots_wait_then_are_refused_after_the_timeout(store):
    rows = entities(**BIG)
    with serve_flight(store, slots=1, slot_timeout=0.5, batch_rows=10) as server, \
            FeatureStore.remote(server.url, grpc_options=SLOW) as first, FeatureStore.remote(server.url) as second:
        holding = first.get_historical_features(rows, REFS).to_reader()
        try:
            holding.read_next_batch()
            with pytest.raises(BusyError, match=r"all 1 engine slot\(s\).*flight.slots, flight.slot_timeout"):
                second.get_historical_features(entities(5), REFS).to_arrow()
        finally:
            assert holding.read_all().num_rows == rows.num_rows - 10  # the first client is unaffected
        assert second.get_historical_features(entities(5), REFS).to_arrow().num_rows == 5


def test_a_waiting_client_runs_once_a_slot_frees(store):
    rows = entities(**BIG)
    with serve_flight(store, slots=1, slot_timeout=20, batch_rows=10) as server, \
            FeatureStore.remote(server.url, grpc_options=SLOW) as first, FeatureStore.remote(server.url) as second:
        holding = first.get_historical_features(rows, REFS).to_reader()
        holding.read_next_batch()
        answer: dict = {}
        waiter = threading.Thread(target=lambda: answer.update(
            table=second.get_historical_features(entities(7), REFS).to_arrow()))
        waiter.start()
        time.sleep(0.3)
        assert waiter.is_alive() and server.slots.in_use == 1  # waiting, not running beside the first
        holding.read_all()
        waiter.join(timeout=20)
        assert answer["table"].num_rows == 7


def test_keys_as_over_http(keyed_store):
    rows = {"driver_id": [1001], "event_timestamp": [entities(1)["event_timestamp"][0].as_py()], "conv_rate": [0.5],
            "acc_rate": [0.5], "avg_daily_trips": [1], "created": [entities(1)["event_timestamp"][0].as_py()]}
    with serve_flight(keyed_store) as server:
        with FeatureStore.remote(server.url) as anonymous:
            with pytest.raises(AuthError, match="needs an API key for reads"):
                anonymous.get_historical_features(entities(3), REFS).to_arrow()
            with pytest.raises(AuthError, match="needs an API key for writes"):
                anonymous.push("driver_stats_push", rows)
        with FeatureStore.remote(server.url, api_key="k2") as wrong, pytest.raises(AuthError, match="not valid"):
            wrong.list_feature_views()
        with FeatureStore.remote(server.url, api_key="k1") as keyed:
            assert keyed.get_historical_features(entities(3), REFS).to_arrow().num_rows == 3
            assert keyed.push("driver_stats_push", rows).rows == 1
