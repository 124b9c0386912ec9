"""Real traffic for rollout tests on the prediction server: a model with two versions of
``served_models:Noisy``, requests per entity id (one by one, or many at once over several
connections), and waits for the server to route by the rollout and for the serving log to
hold what was sent."""

from __future__ import annotations

import asyncio
import json
from contextlib import contextmanager

import pyarrow.compute as pc

from featurestore.models.routing import bucket, to_candidate

from .prediction_server import PredictionServer
from .served import wait_for

__all__ = ["balanced_ids", "predict_many", "register_pair", "send", "shadowed", "wait_logged", "wait_routed"]

REF = ["driver_hourly_stats:conv_rate"]


def register_pair(store, name: str, candidate: dict, stable: dict | None = None) -> None:
    """``name``/1 (``stable`` params, the champion) and ``name``/2 (``candidate`` params)."""
    for params in (stable or {}, candidate):
        store.models.register(name, "served_models:Noisy", flavor="python", features=REF,
                              output=("prediction", "Float64"), flavor_options={"params": params})
    store.models.set_alias(name, "champion", 1)


@contextmanager
def shadowed(served: PredictionServer, name: str, candidate: dict):
    """``name``/1 and ``name``/2 (``candidate`` params) in a shadow rollout at 100%, followed
    by the server; yields the store, rolls back on exit."""
    with served.store() as store:
        register_pair(store, name, candidate=candidate, stable={"seed": 1})
        store.models.rollouts.start(name, 2, mode="shadow", step_weight=100, max_weight=100)
        try:
            followed = f'featurestore_rollout_weight{{model="{name}"}} 100.0'
            wait_for(lambda: followed in served.client.get("/metrics").text,
                     "the server to follow the shadow rollout", 20)
            yield store
        finally:
            store.models.rollouts.rollback(name, reason="test over")


def balanced_ids(weight: int, per_side: int, start: int = 100_000) -> list[int]:
    """Entity ids from ``start`` on until at least ``per_side`` fall on each side of ``weight``."""
    assert 0 < weight < 100, f"no ids fall on both sides of {weight}%"  # else this never ends
    ids, under = [], 0
    i = start
    while under < per_side or len(ids) - under < per_side:
        ids.append(i)
        under += to_candidate([i], weight)
        i += 1
    return ids


def send(served: PredictionServer, name: str, ids: list[int], tag: str) -> dict:
    """One request per id (request id ``name-tag-i``): the answers by id."""
    return {i: served.client.post(f"/predict/{name}", json={"entities": {"driver_id": [i]}},
                                  headers={"X-Request-ID": f"{name}-{tag}-{i}"}) for i in ids}


def predict_many(port: int, name: str, ids: list[int], connections: int = 16) -> dict[int, dict]:
    """One ``/predict/{name}`` request per id, sent over ``connections`` kept-alive
    connections at once (raw HTTP/1.1: a client library's own cost would dominate
    thousands of small requests): the answers (status ``code`` and JSON ``body``) by id."""
    async def connection(todo: list[int], answers: dict) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for i in todo:
                payload = json.dumps({"entities": {"driver_id": [i]}}).encode()
                writer.write(f"POST /predict/{name} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json"
                             f"\r\nContent-Length: {len(payload)}\r\n\r\n".encode() + payload)
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(int(line[15:]) for line in head.split(b"\r\n")
                              if line[:15].lower() == b"content-length:")
                answers[i] = {"code": int(head[9:12]), "body": json.loads(await reader.readexactly(length))}
        finally:
            writer.close()

    async def every() -> dict:
        answers: dict[int, dict] = {}
        await asyncio.gather(*(connection(ids[c::connections], answers) for c in range(connections)))
        return answers

    return asyncio.run(every())


def wait_routed(served: PredictionServer, name: str, weight: int, low: int = 0) -> None:
    """Until an id whose bucket is in [low, weight) is answered by the candidate (the server
    follows the rollout's current weight)."""
    probe = next(i for i in range(900_000, 990_000) if low <= bucket([i]) < weight)

    def routed() -> bool:
        answer = served.client.post(f"/predict/{name}", json={"entities": {"driver_id": [probe]}})
        return answer.status_code != 200 or answer.json()["variant"] != "stable"

    wait_for(routed, f"the server to route {name} at {weight}%", 20)


def wait_logged(served: PredictionServer, name: str, tag: str, count: int) -> None:
    """Until the serving log holds ``count`` rows of requests sent with ``tag``."""
    prefix = f"{name}-{tag}-"

    def logged() -> bool:
        with served.store() as store:
            logs = store.get_logs(name)
        return logs.num_rows > 0 and pc.sum(pc.starts_with(logs["request_id"], prefix)).as_py() >= count

    wait_for(logged, f"{count} rows of {prefix}* in the serving log", 30)
