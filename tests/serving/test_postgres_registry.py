"""A repo whose registry is PostgreSQL, shared by several processes: the CLI applies and
materializes, a real server serves, a script trains and registers a model, and each sees
the others' writes. A database that goes away is a 503 / one error line, and the server
recovers when it is back."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from featurestore import FeatureStore
from featurestore.cli import repo_commands  # noqa: F401 - registers the commands
from featurestore.cli.main import cli
from featurestore.scaffold import init_repo
from serving import create_app

from .conftest import open_store
from .served import Server, wait_for

DRIVERS = [1001, 1002]
KEY = "k-postgres"


def point_registry_at(repo, url: str) -> None:
    config = repo / "featurestore.yaml"
    text = config.read_text()
    assert "registry: data/registry.db" in text
    config.write_text(text.replace("registry: data/registry.db", f"registry: {url}"))


def run_cli(repo, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "from featurestore.cli.main import main; main()", "--repo", str(repo),
                           *args], capture_output=True, text=True, timeout=300)


def test_processes_share_one_postgres_registry(tmp_path, postgres_registry_url):
    repo = init_repo(tmp_path / "repo", project=f"pg_{uuid.uuid4().hex[:8]}")  # data ending now
    point_registry_at(repo, postgres_registry_url)
    for command in (["apply"], ["materialize-incremental", "now"]):
        done = run_cli(repo, *command)
        assert done.returncode == 0, done.stderr
    assert not (repo / "data" / "registry.db").exists()

    server = Server(repo)
    try:
        online = server.client.post("/get-online-features", json={
            "features": ["driver_hourly_stats:conv_rate"], "entities": {"driver_id": DRIVERS}})
        assert online.status_code == 200, online.text
        assert None not in online.json()["results"][1]["values"]
        assert server.client.post("/predict/driver_model", json={"entities": {"driver_id": DRIVERS}}).status_code == 404

        # Another process trains on a point-in-time training set and registers the model;
        # the server's registry watch picks the new champion up.
        trained = subprocess.run([sys.executable, "train.py"], cwd=repo, capture_output=True, text=True, timeout=300)
        assert trained.returncode == 0, trained.stderr
        wait_for(lambda: server.client.post("/predict/driver_model", json={"entities": {"driver_id": DRIVERS}})
                 .status_code == 200, "the server to see the model registered by another process")
        answer = server.client.post("/predict/driver_model", json={"entities": {"driver_id": DRIVERS}}).json()

        with FeatureStore(repo_path=repo) as store:
            assert answer["predictions"] == store.predict_online("driver_model@champion",
                                                                  {"driver_id": DRIVERS}).predictions
            [version] = store.models.versions("driver_model")
            assert version.training_dataset is not None
            assert store.registry.location.startswith("postgresql://") and store.registry.path is None
            training = store.get_saved_dataset("driver_training").to_arrow()
            assert training.num_rows > 0 and training.column("conv_rate").null_count == 0
    finally:
        output = server.stop()
    assert "Traceback" not in output


@pytest.fixture
def postgres_role(postgres_url) -> Iterator[tuple[str, str]]:
    """A login role of its own (so a test can lock it out) and a registry URL in a new
    schema as that role: (role, URL)."""
    import psycopg

    role = f"fs_test_{uuid.uuid4().hex[:10]}"
    scheme, _, rest = postgres_url.partition("://")
    url = f"{scheme}://{role}@{rest.partition('@')[2]}?schema={role}"
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        database = admin.execute("SELECT current_database()").fetchone()[0]
        admin.execute(f'CREATE ROLE "{role}" LOGIN')
        admin.execute(f'GRANT CREATE ON DATABASE "{database}" TO "{role}"')
    yield role, url
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute(f'DROP SCHEMA IF EXISTS "{role}" CASCADE')
        admin.execute(f'REVOKE CREATE ON DATABASE "{database}" FROM "{role}"')
        admin.execute(f'DROP ROLE "{role}"')


def lock_out(postgres_url: str, role: str, locked: bool) -> None:
    """Refuse the role's logins and end its sessions, as a database that went away does."""
    import psycopg

    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute(f'ALTER ROLE "{role}" {"NOLOGIN" if locked else "LOGIN"}')
        if locked:
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (role,))


def test_a_database_that_goes_away_is_a_503_and_one_error_line_until_it_is_back(
        tmp_path, clock, postgres_url, postgres_role):
    role, url = postgres_role
    repo = init_repo(tmp_path / "repo", project="down")
    point_registry_at(repo, url)
    # A key holder: the answers carry the registry's own message (tests/serving/test_disclosure.py).
    with open_store(repo, clock, api_keys=(KEY,)) as store, \
            TestClient(create_app(store, watch_interval=0), headers={"X-API-Key": KEY}) as client:
        store.apply()
        assert client.get("/registry/feature-views").status_code == 200

        lock_out(postgres_url, role, True)
        try:
            response = client.get("/registry/feature-views")
            assert response.status_code == 503, response.text
            error = response.json()["error"]
            assert error["type"] == "RegistryError"
            shown = url.split("?")[0]
            assert error["message"].startswith(f"registry {shown}?schema={role} is unreachable")
            assert "not permitted to log in" in error["message"] and "\n" not in error["message"]

            result = CliRunner().invoke(cli, ["-r", str(repo), "registry", "show"])
            assert result.exit_code == 1 and "Traceback" not in result.output
            [line] = result.stderr.strip().splitlines()
            assert line.startswith(f"error: registry {shown}?schema={role} is unreachable")
        finally:
            lock_out(postgres_url, role, False)
        assert client.get("/registry/feature-views").status_code == 200  # a new connection, no restart
