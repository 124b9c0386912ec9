"""A rollout's PromQL checks against a real Prometheus (Debian package ``prometheus``;
``.ci/run`` installs it) scraping the real server's /metrics every second: the check that
passes promotes, the one that fails rolls back with the query and the measured value; a
query Prometheus refuses, one that gives several series, one without data and an
unreachable Prometheus are failed or inconclusive with the reason, never a crash."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
from datetime import datetime, timedelta, timezone

import httpx
import pytest
import yaml

from featurestore import FeatureStore
from featurestore.config import load_config
from monitoring.rollout_controller import run_rollouts
from monitoring.rollout_promql import check_promql, query_value

from ..conftest import _stop as stop_process
from .rollout_traffic import balanced_ids, register_pair, send, wait_logged, wait_routed
from .served import free_port, wait_for

PROMETHEUS = shutil.which("prometheus")
pytestmark = pytest.mark.skipif(PROMETHEUS is None, reason="the prometheus binary is not installed (Debian package "
                                                           "prometheus; .ci/run installs it with apt-get)")

# The candidate's share of failed requests since the rollout started (0 when none failed).
ERROR_RATIO = ('(sum(featurestore_predictions_total{model="{model}",version="{candidate}",variant="{variant}",'
               'status!="ok"}) or vector(0)) / sum(featurestore_predictions_total{model="{model}",'
               'version="{candidate}",variant="{variant}"})')


@pytest.fixture(scope="module")
def prometheus(prediction_server, tmp_path_factory):
    """A private Prometheus scraping the prediction server every second; its URL."""
    folder = tmp_path_factory.mktemp("prometheus")
    port = free_port()
    config = {"global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
              "scrape_configs": [{"job_name": "featurestore",
                                  "static_configs": [{"targets": [f"127.0.0.1:{prediction_server.server.port}"]}]}]}
    (folder / "prometheus.yml").write_text(yaml.safe_dump(config))
    proc = subprocess.Popen([PROMETHEUS, f"--config.file={folder / 'prometheus.yml'}",
                             f"--storage.tsdb.path={folder / 'data'}", f"--web.listen-address=127.0.0.1:{port}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: proc.poll() is not None or httpx.get(f"{url}/-/ready", timeout=2).status_code == 200,
                 "prometheus to be ready", 60)
        assert proc.poll() is None, "prometheus exited at start"
        yield url
    finally:
        stop_process(proc)


def _store(served, url: str | None) -> FeatureStore:
    """The server's store, its featurestore.yaml naming ``url`` as monitoring.prometheus_url."""
    config = load_config(served.repo, env=served.env)
    monitoring = {**(config.extra.get("monitoring") or {}), "prometheus_url": url}
    return FeatureStore(config=dataclasses.replace(config, extra={**config.extra, "monitoring": monitoring}))


def _scraped(url: str, model: str, requests: int) -> bool:
    value = query_value(url, f'sum(featurestore_predictions_total{{model="{model}"}})', datetime.now(timezone.utc))
    return value is not None and value >= requests


def test_a_promql_check_decides_a_rollout_against_a_real_prometheus(prediction_server, prometheus):
    cases = {"promql_good": {"seed": 2}, "promql_bad": {"seed": 2, "fail_every": 2}}  # bad: half its calls fail
    checks = {"success_rate": None, "js_distance": None,
              "promql": [{"name": "error_ratio", "query": ERROR_RATIO, "max": 0.01}]}
    with _store(prediction_server, prometheus) as store:
        for name, params in cases.items():
            register_pair(store, name, candidate=params, stable={"seed": 1})
            store.models.rollouts.start(name, 2, step_weight=50, max_weight=50, interval=1, threshold=1,
                                        min_requests=10, checks=checks)
        ids = balanced_ids(50, 20)
        for name in cases:
            wait_routed(prediction_server, name, 50)
            sent = len(send(prediction_server, name, ids, "p")) + 1  # and the probe that saw the route
            wait_logged(prediction_server, name, "p", len(ids))
            wait_for(lambda: _scraped(prometheus, name, sent), f"prometheus to scrape {name}'s requests", 30)
        run_rollouts(store, now=datetime.now(timezone.utc) + timedelta(seconds=2))
        good, bad = (store.models.rollouts.get(name) for name in cases)

    assert good.state == "promoted", good.history[-1]
    [passed] = good.history[-1].measured["promql"]
    assert passed["outcome"] == "passed" and passed["measured"] == 0.0
    assert 'model="promql_good",version="2",variant="canary"' in passed["query"]  # placeholders filled in

    assert (bad.state, bad.weight) == ("rolled_back", 0)
    assert bad.failure["check"] == "error_ratio" and bad.failure["limit"] == 0.01
    assert 0.4 <= bad.failure["measured"] <= 0.6
    assert 'model="promql_bad"' in bad.failure["query"]
    assert "error_ratio" in bad.history[-1].reason


def test_broken_queries_are_failed_or_inconclusive_with_the_reason(prediction_server, prometheus):
    with _store(prediction_server, prometheus) as store:
        register_pair(store, "promql_broken", candidate={"seed": 2})
        checks = {"promql": [
            {"name": "refused", "query": "sum(featurestore_predictions_total{model=", "max": 1},
            {"name": "several", "query": "up or vector(1)", "max": 1e9},
            {"name": "nothing", "query": 'featurestore_predictions_total{model="{model}",variant="none"}', "max": 1},
            {"name": "in_range", "query": "vector(0.5)", "min": 0.1, "max": 0.9},
        ]}
        rollout = store.models.rollouts.start("promql_broken", 2, checks=checks)
        try:
            wait_for(lambda: query_value(prometheus, "sum(up)", datetime.now(timezone.utc)) == 1,
                     "a first scrape", 30)
            now = datetime.now(timezone.utc)
            results = {r["check"]: r for r in check_promql(prometheus, rollout, now)}
            away = check_promql(f"http://127.0.0.1:{free_port()}", rollout, now)
            unset = check_promql(None, rollout, now)
        finally:
            store.models.rollouts.rollback("promql_broken", reason="test over")
    assert results["refused"]["outcome"] == "failed" and "refused the query" in results["refused"]["error"]
    assert results["several"]["outcome"] == "failed" and "aggregate it to one" in results["several"]["error"]
    assert results["nothing"]["outcome"] == "inconclusive" and results["nothing"]["measured"] is None
    assert results["in_range"]["outcome"] == "passed" and results["in_range"]["measured"] == 0.5
    assert {r["outcome"] for r in away} == {"failed"} and "did not answer" in away[0]["error"]
    assert "monitoring.prometheus_url" in unset[0]["error"]


def test_promql_checks_need_a_prometheus_and_a_well_formed_check(prediction_server):
    from featurestore.errors import InputError

    with _store(prediction_server, None) as store:
        register_pair(store, "promql_refused", candidate={"seed": 2})
        with pytest.raises(InputError, match="monitoring.prometheus_url"):
            store.models.rollouts.start("promql_refused", 2, checks={"promql": [{"query": "up", "max": 1}]})
    with _store(prediction_server, "http://127.0.0.1:9") as store:
        for bad, words in (([{"query": "up"}], "numeric 'max'"), ([{"max": 1}], "needs a 'query'"),
                           ([{"query": "up", "max": 1, "op": "<"}], "must be a mapping of"),
                           ("up", "takes a list")):
            with pytest.raises(InputError, match=words):
                store.models.rollouts.start("promql_refused", 2, checks={"promql": bad})
        assert not store.registry.history(store.project, "rollout", "promql_refused")  # nothing stored
