"""The Flight server on a thread of this process, over a real store, and a real client.

``serve_flight(store, **settings)`` runs ``FeatureFlightServer`` on a free port until the
block ends; tests read ``server.slots`` to see what the server holds."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pyarrow as pa
import pytest

from featurestore import FeatureStore
from serving.flight import FeatureFlightServer, FlightSettings

from ..conftest import NOW, open_store


@contextmanager
def serve_flight(store: FeatureStore, **settings) -> Iterator[FeatureFlightServer]:
    server = FeatureFlightServer(store, FlightSettings(port=0, **settings))
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        thread.join(timeout=10)


def entities(n: int, payload: int = 0) -> pa.Table:
    """``n`` entity rows over the example's drivers at hours before NOW; ``payload`` bytes of
    text per row make the answer large (it passes through unchanged)."""
    columns = {"driver_id": pa.array([1001 + i % 5 for i in range(n)], pa.int64()),
               "event_timestamp": pa.array([NOW.replace(hour=i % 12) for i in range(n)], pa.timestamp("us", "UTC"))}
    if payload:
        columns["payload"] = pa.array(["x" * payload] * n)
    return pa.table(columns)


@pytest.fixture
def keyed_store(repo, clock):
    """The example repo with API key ``k1``, keys needed for reads too."""
    with open_store(repo, clock, api_keys=("k1",), auth_reads=True) as s:
        s.apply()
        yield s
