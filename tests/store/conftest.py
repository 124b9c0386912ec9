from datetime import datetime, timezone

import uuid

import pytest

from featurestore import FeatureStore
from featurestore.scaffold import init_repo

NOW = datetime(2024, 5, 1, 12, tzinfo=timezone.utc)


@pytest.fixture
def repo(tmp_path):
    """The example repo from `featurestore init`, data ending at NOW, in its own project
    (so tests sharing one Redis server never see each other's keys)."""
    return init_repo(tmp_path / "repo", project=f"test_{uuid.uuid4().hex[:10]}", now=NOW)


@pytest.fixture
def store(repo):
    with FeatureStore(repo_path=repo, clock=lambda: NOW.timestamp()) as s:
        s.apply()
        yield s


@pytest.fixture
def engine_repo(repo, offline_store_section):
    """The example repo on each offline engine in turn (DuckDB, Spark)."""
    config = repo / "featurestore.yaml"
    config.write_text(config.read_text().replace("offline_store: data/offline\n", offline_store_section))
    return repo


@pytest.fixture
def engine_store(engine_repo):
    """``store`` on each offline engine in turn."""
    with FeatureStore(repo_path=engine_repo, clock=lambda: NOW.timestamp()) as s:
        s.apply()
        yield s
