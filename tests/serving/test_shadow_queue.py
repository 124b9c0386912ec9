"""The shadow jobs' queue between the request path and the shadow thread: every job a
request submits is taken by the thread exactly once, in order, also when requests submit
while the thread takes the jobs waiting; past the bound a job is dropped, not queued."""

from __future__ import annotations

import pickle
import threading

from featurestore.config import RepoConfig
from featurestore.models.inputs import ModelInputs
from featurestore.online.read import OnlineResponse
from featurestore.types import Float64
from serving.shadow import ShadowScorer


class Unstarted(ShadowScorer):
    """A scorer whose jobs the test takes, as the shadow thread would (no thread, no process)."""

    def _start(self) -> None:
        pass


class Candidate:
    uri, timeout = "m/2", 1.0  # what a job is pickled with

    def __init__(self):
        self.counted: list[tuple] = []

    def count(self, status: str, variant: str, n: int = 1) -> None:
        self.counted.append((status, variant, n))


def scorer(tmp_path, max_pending: int) -> Unstarted:
    return Unstarted(RepoConfig(project="p", repo_path=tmp_path, registry=str(tmp_path / "registry.db"),
                                offline_store=tmp_path), max_pending=max_pending)


def submit(queue: ShadowScorer, candidate: Candidate, i: int) -> bool:
    features = OnlineResponse(["f"], [[float(i)]], [["PRESENT"]], [[0]], [Float64])
    return queue.submit(candidate, f"r{i}", 0.0, {"id": [i]}, None, ("id",), features,
                        ModelInputs(None, features.values, 1), 1.0)


def test_jobs_submitted_while_the_thread_takes_them_are_each_taken_once_in_order(tmp_path):
    queue, candidate, n = scorer(tmp_path, max_pending=10**6), Candidate(), 50_000
    taken: list[str] = []
    producer = threading.Thread(target=lambda: [submit(queue, candidate, i) for i in range(n)])
    producer.start()
    while producer.is_alive():
        taken += [job[1] for job in queue._take()]
    producer.join()
    taken += [job[1] for job in queue._take()]
    assert taken == [f"r{i}" for i in range(n)]
    assert candidate.counted == []


def test_a_job_beyond_the_bound_is_dropped_and_counted_not_queued(tmp_path):
    queue, candidate = scorer(tmp_path, max_pending=3), Candidate()
    assert [submit(queue, candidate, i) for i in range(5)] == [True, True, True, False, False]
    assert candidate.counted == [("dropped", "shadow", 1)] * 2
    jobs = queue._take()
    assert [job[1] for job in jobs] == ["r0", "r1", "r2"]
    # each as the shadow process reads it (serving/shadow_process.py: Job)
    assert [pickle.loads(job[2])[2] for job in jobs] == ["r0", "r1", "r2"]
    assert pickle.loads(jobs[1][2])[10] == (["f"], [[1.0]], [["PRESENT"]], [[0]], ["Float64"])
    assert submit(queue, candidate, 5)  # room again once the thread took them
