"""What an unauthenticated reader sends cannot grow a server's memory without bound: every
cache keyed by request content is bounded, and absurd feature lists are refused."""

from __future__ import annotations

import gc
import itertools
import tracemalloc

from fastapi.testclient import TestClient

from serving import create_app

from .conftest import REFS, open_store

VIEWS = ("driver_hourly_stats", "driver_hourly_stats_fresh")
FEATURES = ("conv_rate", "acc_rate", "avg_daily_trips")


def feature_lists():
    """1,440 distinct valid feature lists of five or six references, the two sizes
    alternating (so a bounded cache holds the same mix of sizes all along)."""
    refs = [f"{v}:{f}" for v in VIEWS for f in FEATURES]
    for five, six in zip(itertools.permutations(refs, 5), itertools.permutations(refs, 6)):
        yield list(five)
        yield list(six)


def test_a_feature_list_with_a_repeated_reference_is_refused(client):
    answer = client.post("/get-online-features",
                         json={"features": [REFS[0], REFS[1], REFS[0]], "entities": {"driver_id": [1001]}})
    assert answer.status_code == 422
    message = answer.json()["error"]["message"]
    assert REFS[0] in message and "twice" in message


def test_more_features_than_the_limit_are_refused(repo, clock):
    with open_store(repo, clock, max_features=2) as store:
        store.apply()
        with TestClient(create_app(store, watch_interval=0)) as client:
            answer = client.post("/get-online-features", json={"features": REFS, "entities": {"driver_id": [1001]}})
            assert answer.status_code == 422
            assert "serving.max_features" in answer.json()["error"]["message"]
            # a huge list is refused by its length, before any reference is looked at
            answer = client.post("/get-online-features",
                                 json={"features": [REFS[0]] * 20_000, "entities": {"driver_id": [1001]}})
            assert answer.status_code == 422
            assert "serving.max_features" in answer.json()["error"]["message"]


def test_distinct_feature_lists_do_not_grow_memory_without_bound(store):
    """The per-feature-list caches (read plans, metric layouts, store read specs) keep a
    bounded number of entries however many distinct lists clients send."""
    lists = feature_lists()
    with TestClient(create_app(store, watch_interval=0)) as client:

        def send(count: int) -> None:
            for features in itertools.islice(lists, count):
                answer = client.post("/get-online-features", json={
                    "features": features, "entities": {"driver_id": [1001]}, "full_feature_names": True})
                assert answer.status_code == 200, answer.text

        tracemalloc.start()  # before the warm-up, so that what it frees later is seen
        try:
            send(440)  # past every cache's bound
            gc.collect()
            before = tracemalloc.take_snapshot()
            send(1000)
            gc.collect()
            after = tracemalloc.take_snapshot()
        finally:
            tracemalloc.stop()
    grown = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    assert grown < 300_000, f"1,000 distinct feature lists kept {grown:,} bytes"


def test_arbitrary_http_methods_do_not_add_metric_series(client):
    for i in range(300):
        assert client.request(f"M{i}", "/get-online-features").status_code in (404, 405)
    series = [line for line in client.get("/metrics").text.splitlines()
              if line.startswith("featurestore_http_requests_total{")]
    assert not [line for line in series if 'method="M' in line]
    assert [line for line in series if 'method="other"' in line]
