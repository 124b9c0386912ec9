"""The stream worker on a real Redis Cluster: a consumer group on streams of one slot,
aggregation state and online values written per slot, acknowledged after the offline
append; streams that do not share a hash tag are refused with the fix."""

from __future__ import annotations

import pytest
from redis.cluster import RedisCluster

from featurestore.errors import ConfigError
from featurestore.online.redis_protocol import plain_url
from featurestore.streaming import StreamSettings, StreamWorker

from .conftest import open_store, write_repo
from .test_worker import assert_parity, offline_rows, online_count, trip


@pytest.fixture
def cluster(redis_cluster_url):
    client = RedisCluster.from_url(plain_url(redis_cluster_url))
    yield client
    client.close()


def streaming(*streams: str) -> str:
    listed = "".join(f"\n        - stream: '{s}'\n          push_source: trips_push" for s in streams)
    return f"""
    streaming:
      streams:{listed}
      flush_seconds: 3600
      claim_idle_seconds: 36000
    """


def test_a_worker_consumes_streams_of_one_slot_into_the_cluster(tmp_path, clock, redis_project, redis_cluster_url,
                                                                 cluster):
    stream = "{%s}:trips" % redis_project
    repo = write_repo(tmp_path / "repo", redis_project, "redis", redis_cluster_url, streaming(stream))
    with open_store(repo, clock) as store:
        for i in range(60):
            cluster.xadd(stream, trip(i % 6, i / 10))
        worker = StreamWorker(store, StreamSettings.from_config(store.config))
        worker.step()
        assert [online_count(store, d) for d in range(6)] == [10] * 6
        assert cluster.xpending(stream, "featurestore")["pending"] == 60
        worker.flush()
        assert cluster.xpending(stream, "featurestore")["pending"] == 0
        assert offline_rows(store).num_rows == 60
        assert_parity(store, list(range(7)))
        latest = store.get_online_features(["trips_latest:city"], {"driver_id": [0, 9]}).to_dict()["city"]
        assert latest == ["x", None]
        worker.close()


def test_streams_without_a_shared_hash_tag_are_refused(tmp_path, clock, redis_project, redis_cluster_url):
    repo = write_repo(tmp_path / "repo", redis_project, "redis", redis_cluster_url,
                      streaming(f"{redis_project}-a", f"{redis_project}-b"))
    with open_store(repo, clock) as store:
        with pytest.raises(ConfigError, match="same hash tag"):
            StreamWorker(store, StreamSettings.from_config(store.config))
