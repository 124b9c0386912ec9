"""An applied repo with on-demand views, on SQLite or Redis."""

from __future__ import annotations

import uuid

import pytest

from featurestore import FeatureStore
from featurestore.config import load_config

from .on_demand_repo import NOW, repo_with_on_demand


@pytest.fixture(params=["sqlite", "redis"])
def odfv_store(request, tmp_path):
    """The applied repo with on-demand views, materialized up to NOW."""
    if request.param == "redis":
        project = request.getfixturevalue("redis_project")
        # A generous read deadline: these tests pin values, not latency, on shared cores.
        online = (f"  type: redis\n  connection_string: {request.getfixturevalue('redis_url')}\n"
                  "  read_timeout: 5\n")
    else:
        project = f"test_{uuid.uuid4().hex[:10]}"
        online = "  type: sqlite\n  path: data/online.db\n"
    repo = repo_with_on_demand(tmp_path, online, project)
    with FeatureStore(config=load_config(repo, env={}), clock=lambda: NOW.timestamp()) as store:
        store.apply()
        store.materialize_incremental(NOW)
        yield store
