"""The canary split through a real two-worker server: every one of 4,000 entities gets the
variant ``to_candidate`` gives it (whose share over 20,000 keys is pinned by
tests/models/test_routing.py), the candidate's share is within 2 points of the weight,
and each entity keeps its variant whichever worker answers it."""

from __future__ import annotations

import time
from collections import defaultdict

import pyarrow.parquet as pq
import pytest

from featurestore.models.routing import to_candidate

from .rollout_traffic import predict_many, register_pair
from .served import Server, wait_for

WEIGHT = 30
IDS = list(range(200_000, 204_000))


@pytest.mark.integration
def test_the_canary_share_is_within_two_points_of_the_weight_and_sticky_across_workers(
        prediction_server):
    name = "split"
    with prediction_server.store() as store:
        register_pair(store, name, candidate={"seed": 2}, stable={"seed": 1})
        store.models.rollouts.start(name, 2, step_weight=WEIGHT, max_weight=60, interval="1h")
        folder = store.serving_log_folder(name)
    server = Server(prediction_server.repo, "--workers", "2", "--no-access-log", "--watch-interval", "0.5",
                    env=prediction_server.env)
    try:
        wait_for(lambda: server.client.get("/ready").status_code == 200, "the two workers to be ready")
        first = predict_many(server.port, name, IDS)
        assert {a["code"] for a in first.values()} == {200}
        variants = {i: (a["body"]["variant"], a["body"]["version"]) for i, a in first.items()}
        assert variants == {i: ("canary", 2) if to_candidate([i], WEIGHT) else ("stable", 1) for i in IDS}
        share = sum(v == "canary" for v, _ in variants.values()) / len(IDS)
        assert abs(share - WEIGHT / 100) <= 0.02, share

        # Again on new connections, which the two workers take in turns as they come.
        again = predict_many(server.port, name, IDS[::20], connections=8)
        assert {i: (a["body"]["variant"], a["body"]["version"]) for i, a in again.items()} == {
            i: variants[i] for i in IDS[::20]}

        # Each worker writes its own log files (<first µs>-<pid>-<random>.parquet): both
        # answered, and an entity answered by both got the same variant from each.
        def by_worker() -> dict[str, dict[int, set]]:
            seen: dict[str, dict[int, set]] = defaultdict(lambda: defaultdict(set))
            for file in folder.rglob("*.parquet"):
                rows = pq.read_table(file, columns=["driver_id", "variant"]).to_pydict()
                for i, variant in zip(rows["driver_id"], rows["variant"]):
                    seen[file.name.split("-")[1]][i].add(variant)
            return seen

        def logged() -> int:
            return sum(pq.read_metadata(file).num_rows for file in folder.rglob("*.parquet"))

        # The kernel hands new connections to whichever worker accepts first: on a busy
        # machine one worker can take them all for a while. So once every answer sent is in
        # the logs (each worker flushes on its own clock), more connections are opened (each
        # answer checked as above) until both workers answered some entity.
        sent, deadline = len(first) + len(again), time.monotonic() + 60
        while True:
            wait_for(lambda: logged() >= sent, f"the serving logs to hold all {sent} answers", 30)
            workers = list(by_worker().values())
            if len(workers) == 2 and workers[0].keys() & workers[1].keys():
                break
            assert time.monotonic() < deadline, f"no entity answered by both workers ({len(workers)} worker log(s))"
            more = predict_many(server.port, name, IDS[1::97], connections=4)
            assert {i: (a["body"]["variant"], a["body"]["version"]) for i, a in more.items()} == {
                i: variants[i] for i in IDS[1::97]}
            sent += len(more)
        assert set().union(*workers) == set(IDS)
        for seen in workers:  # an entity answered by both workers got the same variant from each
            assert all(found == {variants[i][0]} for i, found in seen.items())
    finally:
        server.stop()
        with prediction_server.store() as store:
            store.models.rollouts.rollback(name, reason="test over")
