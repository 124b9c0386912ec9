"""Batched metric updates (monitoring.metric_batches): once added, the values are exactly
those of prometheus_client's own updates; none is lost to threads; a read of the default
registry sees them without waiting for a flush."""

from __future__ import annotations

import os
import threading
import uuid

import pytest
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest

from monitoring import metric_batches
from monitoring.metrics import FAST_LATENCY_BUCKETS, mark_process_dead

# Below, on and above bucket bounds, past the last one, zero and a repeat.
VALUES = [0.00005, 0.0001, 0.00010001, 0.0003, 0.001, 0.004, 0.0049999, 0.005, 0.02, 0.1, 0.9, 1.0, 4.0, 5.0,
          7.5, 120.0, 0.0, 0.0003]


def _metrics(registry):
    return (Histogram("t_seconds", "h", ["route"], buckets=FAST_LATENCY_BUCKETS, registry=registry),
            Counter("t_requests_total", "c", ["route"], registry=registry),
            Counter("t_nulls_total", "c", ["route"], registry=registry))


def _samples(registry) -> dict:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in registry.collect() for s in family.samples if not s.name.endswith("_created")}


def test_a_batched_histogram_and_counter_expose_exactly_what_direct_updates_do():
    direct, batched = CollectorRegistry(), CollectorRegistry()
    histogram, requests, nulls = _metrics(direct)
    for value in VALUES:
        histogram.labels("/a").observe(value)
        requests.labels("/a").inc()
        nulls.labels("/a").inc(3)

    histogram, requests, nulls = _metrics(batched)
    timed = metric_batches.histogram(histogram.labels("/a"), counted_by=requests.labels("/a"))
    counted = metric_batches.counter(nulls.labels("/a"))
    assert metric_batches.histogram(histogram.labels("/a")) is timed  # one batch per child
    for i, value in enumerate(VALUES):
        timed.observe(value)
        counted.inc(3)
        if i == 7:
            metric_batches.flush()  # added in two batches
            assert batched.get_sample_value("t_seconds_count", {"route": "/a"}) == 8
    metric_batches.flush()

    expected, got = _samples(direct), _samples(batched)
    assert got.keys() == expected.keys() and len(got) == 14 + 2 + 2  # the buckets with +Inf, count, sum; 2 counters
    for key, value in expected.items():  # a sum added in batches may round differently in its last bit
        assert got[key] == (pytest.approx(value, rel=1e-12) if key[0] == "t_seconds_sum" else value), key
    assert got["t_seconds_bucket", (("le", "0.005"), ("route", "/a"))] == 10  # 0.005 itself included
    assert got["t_requests_total", (("route", "/a"),)] == len(VALUES)
    assert got["t_nulls_total", (("route", "/a"),)] == 3 * len(VALUES)



def test_a_histogram_child_without_the_private_attributes_still_counts_every_observation():
    """A prometheus_client release that renames the child's internals: one observe per value."""
    registry = CollectorRegistry()
    histogram = Histogram("plain_seconds", "h", buckets=(0.5, 1.0), registry=registry)

    class Renamed:  # the real child behind only its public observe
        observe = histogram.observe

    batch = metric_batches.histogram(Renamed())
    for value in (0.25, 0.75, 2.0):
        batch.observe(value)
    metric_batches.flush()
    assert registry.get_sample_value("plain_seconds_count") == 3
    assert registry.get_sample_value("plain_seconds_bucket", {"le": "0.5"}) == 1
    assert registry.get_sample_value("plain_seconds_bucket", {"le": "1.0"}) == 2
    assert registry.get_sample_value("plain_seconds_sum") == 3.0

def test_updates_from_several_threads_while_flushing_are_all_counted():
    registry = CollectorRegistry()
    counter = Counter("threads_total", "c", registry=registry)
    histogram = Histogram("threads_seconds", "h", buckets=(0.5, 1.0), registry=registry)
    inc, observe = metric_batches.counter(counter).inc, metric_batches.histogram(histogram).observe
    per_thread, done = 20_000, threading.Event()

    def record():
        for i in range(per_thread):
            inc(1)
            observe(0.25 if i % 2 else 0.75)

    def flush_until_done():
        while not done.is_set():
            metric_batches.flush()

    flusher = threading.Thread(target=flush_until_done)
    flusher.start()
    threads = [threading.Thread(target=record) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    done.set()
    flusher.join()
    metric_batches.flush()
    assert registry.get_sample_value("threads_total") == 4 * per_thread
    assert registry.get_sample_value("threads_seconds_bucket", {"le": "0.5"}) == 2 * per_thread
    assert registry.get_sample_value("threads_seconds_count") == 4 * per_thread
    assert registry.get_sample_value("threads_seconds_sum") == 4 * per_thread * 0.5


def test_reading_the_default_registry_adds_pending_updates_first():
    name = f"t_{uuid.uuid4().hex[:8]}"
    counter = Counter(f"{name}_total", "c", ["reason"])  # on the default registry, as the serving metrics
    try:
        metric_batches.counter(counter.labels("x")).inc(2)
        assert REGISTRY.get_sample_value(f"{name}_total", {"reason": "x"}) == 2
        metric_batches.counter(counter.labels("x")).inc(1)
        assert f'{name}_total{{reason="x"}} 3.0' in generate_latest(REGISTRY).decode()
    finally:
        REGISTRY.unregister(counter)


def test_a_stopping_worker_adds_its_pending_updates():
    registry = CollectorRegistry()  # not the default one, whose reads add them anyway
    counter = Counter("stopping_total", "c", registry=registry)
    metric_batches.counter(counter).inc(5)
    mark_process_dead(os.getpid())
    assert registry.get_sample_value("stopping_total") == 5
