"""Fixtures for the prediction tests: ``world``, the repo of ``world.py`` with
``trip_model/1`` trained and registered, on SQLite and on the session's Redis.

``world`` is module-scoped (training and registering take a moment); tests that register
more versions give them names of their own.
"""

from __future__ import annotations

import uuid

import pytest

from .world import build_world


@pytest.fixture(scope="module", params=["sqlite", "redis"])
def world(request, tmp_path_factory):
    """A ``World``: the applied repo, its store at NOW and ``trip_model/1`` (champion)."""
    project = f"test-{uuid.uuid4().hex[:12]}"
    if request.param == "redis":
        url = request.getfixturevalue("redis_url")
        # A generous read deadline: these tests pin values, not latency, on shared cores.
        online = f"  type: redis\n  connection_string: {url}\n  read_timeout: 5\n"
    else:
        online = "  type: sqlite\n  path: data/online.db\n"
    built = build_world(tmp_path_factory.mktemp("predict"), online, project)
    try:
        yield built
    finally:
        built.store.close()
        if request.param == "redis":
            import redis

            client = redis.Redis.from_url(url)
            doomed = list(client.scan_iter(match=f"{project}*", count=1000))
            if doomed:
                client.delete(*doomed)
            client.close()
