"""A registry on a read-only mount: plan, `registry show`, training sets and serving read
it; whatever would write it (apply, materialize) fails with one clear error."""

from __future__ import annotations

import os

import pyarrow as pa
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

import featurestore.cli.repo_commands  # noqa: F401 - registers plan, apply, registry
from featurestore import FeatureStore
from featurestore.cli.main import cli
from featurestore.errors import RegistryError
from serving import create_app

from ..registry.test_registry_safety import read_only
from .conftest import NOW


@pytest.fixture
def ro_repo(repo, monkeypatch):
    """The example repo, applied and materialized, its registry alone in a read-only folder."""
    for name in [k for k in os.environ if k.startswith("FEATURESTORE_")]:
        monkeypatch.delenv(name)
    yaml = repo / "featurestore.yaml"
    yaml.write_text(yaml.read_text().replace("registry: data/registry.db", "registry: meta/registry.db"))
    with FeatureStore(repo_path=repo, clock=lambda: NOW.timestamp()) as store:
        store.apply()
        store.materialize(None, NOW)
    undo = read_only(repo / "meta")
    yield repo
    undo()


def test_reads_work_on_a_read_only_registry(ro_repo):
    with FeatureStore(repo_path=ro_repo, clock=lambda: NOW.timestamp()) as store:
        assert store.plan() == []
        online = store.get_online_features(["driver_hourly_stats:conv_rate"], [{"driver_id": 1001}]).to_dict()
        assert online["conv_rate"][0] is not None
        entities = pa.table({"driver_id": [1001], "event_timestamp": pa.array([NOW], pa.timestamp("us", tz="UTC"))})
        assert store.get_historical_features(entities, ["driver_hourly_stats:conv_rate"]).to_arrow().num_rows == 1
        with TestClient(create_app(store, watch_interval=0)) as client:
            answer = client.post("/get-online-features", json={
                "features": ["driver_hourly_stats:conv_rate"], "entities": {"driver_id": [1001]}})
            assert answer.status_code == 200, answer.text


def test_writes_to_a_read_only_registry_fail_clearly(ro_repo):
    with FeatureStore(repo_path=ro_repo, clock=lambda: NOW.timestamp()) as store:
        for write in (lambda: store.apply(force=True), lambda: store.materialize(None, NOW)):
            with pytest.raises(RegistryError, match=r"meta/registry.db is open read-only .*cannot write"):
                write()


def test_cli_reads_a_read_only_registry_and_refuses_apply_in_one_line(ro_repo):
    runner = CliRunner()
    for command in (["plan"], ["registry", "show"], ["registry", "show", "feature_view", "driver_hourly_stats"]):
        result = runner.invoke(cli, ["-r", str(ro_repo), *command])
        assert result.exit_code == 0, (command, result.output)
    shown = runner.invoke(cli, ["-r", str(ro_repo), "registry", "show"]).output
    assert "driver_hourly_stats" in shown
    result = runner.invoke(cli, ["-r", str(ro_repo), "apply", "--force"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.stderr.strip().count("\n") == 0 and "read-only" in result.stderr
