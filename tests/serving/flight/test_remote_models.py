"""Scoring and the model registry through ``FeatureStore.remote``: the answers of
``store.predict``, ``store.predict_online`` and ``store.models`` on the server; and a
server with TLS."""

from __future__ import annotations

import subprocess
import uuid

import pytest

from featurestore import FeatureStore
from featurestore.models.predict import Prediction

from ...predict.world import MODEL, build_world
from .conftest import serve_flight


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    built = build_world(tmp_path_factory.mktemp("remote_models"), "  type: sqlite\n  path: data/online.db\n",
                        f"test-{uuid.uuid4().hex[:12]}")
    try:
        yield built
    finally:
        built.store.close()


def test_batch_and_online_scoring_answer_as_the_local_store(world):
    with serve_flight(world.store) as server, FeatureStore.remote(server.url) as remote:
        entities = world.entity_df()
        assert remote.predict(world.uri, entities).equals(world.store.predict(world.uri, entities))
        online = remote.predict_online(f"{MODEL}@champion", world.entity_columns())
        expected = world.store.predict_online(f"{MODEL}@champion", world.entity_columns())
        assert isinstance(online, Prediction)
        assert online.to_dict() == expected.to_dict()
        assert online.to_arrow().equals(expected.to_arrow())


def test_the_model_registry_reads_as_locally(world):
    models = world.store.models
    with serve_flight(world.store) as server, FeatureStore.remote(server.url) as remote:
        assert [m.to_dict() for m in remote.models.list()] == [m.to_dict() for m in models.list()]
        assert remote.models.get(f"{MODEL}@champion").to_dict() == models.get(f"{MODEL}@champion").to_dict()
        assert [v.uri for v in remote.models.versions(MODEL)] == [f"{MODEL}/1"]
        assert remote.models.get_model(MODEL).aliases == {"champion": 1}


def test_a_server_with_a_certificate_serves_tls(world, tmp_path):
    cert, key = tmp_path / "server.crt", tmp_path / "server.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    with serve_flight(world.store, tls_cert=cert, tls_key=key) as server:
        assert server.url.startswith("grpc+tls://")
        with FeatureStore.remote(server.url, tls_root_certs=cert) as remote:
            assert remote.get_historical_features(world.entity_df(), ["driver_hourly_stats:conv_rate"]).to_arrow() \
                .equals(world.store.get_historical_features(world.entity_df(), ["driver_hourly_stats:conv_rate"]).to_arrow())
