"""The monitor over real HTTP (uvicorn): latest run, history, Prometheus gauges, and the
report page opened in a real headless browser (Chromium through Playwright)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from monitoring import run_monitor

from ..browser import launch_chromium, needs_chromium, watch_errors
from ..serving.served import Server
from .conftest import FEATURES, NOW, served_rows


@pytest.fixture(scope="module")
def served(monitored):
    store, table, model = monitored
    first = run_monitor(store, "driver_model", NOW, NOW + timedelta(hours=1), rows=served_rows(table, model, 300, 11))
    last = run_monitor(store, "driver_model", NOW + timedelta(hours=1), NOW + timedelta(hours=2),
                       rows=served_rows(table, model, 300, 12, shift=2.0))
    server = Server(store.repo_path)
    yield server, first, last
    server.stop()


@pytest.mark.integration
def test_latest_run_and_history_over_http(served):
    server, first, last = served
    got = server.client.get("/monitoring/models/driver_model").json()
    assert got == last.to_dict()
    assert got["dataset_drift"] is True and [d["feature"] for d in got["drift"]] == [*FEATURES, "prediction"]
    runs = server.client.get("/monitoring/models/driver_model/history", params={"limit": 2}).json()["runs"]
    assert [r["run"] for r in runs] == [last.run, first.run]
    missing = server.client.get("/monitoring/models/nosuch")
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "NotFoundError"
    assert "nosuch" in missing.json()["error"]["message"]


@pytest.mark.integration
def test_metrics_carry_the_latest_run(served):
    server, _, last = served
    text = server.client.get("/metrics").text
    conv = next(d for d in last.drift if d["feature"] == "conv_rate")
    score = re.search(r'featurestore_drift_score\{feature="conv_rate",method="(\w+)",model="driver_model"\} (\S+)', text)
    assert score and score.group(1) == conv["method"] and float(score.group(2)) == pytest.approx(conv["statistic"])
    assert 'featurestore_drift_detected{feature="conv_rate",model="driver_model"} 1.0' in text
    assert 'featurestore_drift_detected{feature="avg_daily_trips",model="driver_model"} 0.0' in text
    assert 'featurestore_dataset_drift{model="driver_model"} 1.0' in text


@pytest.mark.integration
@needs_chromium
def test_report_renders_its_plots_in_a_headless_browser(served, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    server, _, last = served
    page_html = server.client.get("/monitoring/models/driver_model/report")
    assert page_html.status_code == 200 and page_html.headers["content-type"].startswith("text/html")
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page_html.text)  # nothing fetched from anywhere
    report = tmp_path / "report.html"
    report.write_text(page_html.text)
    errors: list[str] = []
    with sync_api.sync_playwright() as p:
        browser = launch_chromium(p)
        try:
            page = browser.new_page()
            watch_errors(page, errors, "file:")
            page.goto(report.as_uri())
            rows = page.locator("#summary tr").count()
            verdicts = page.locator("#summary tr td:nth-child(5)").all_inner_texts()
            plots = page.locator("section.feature svg")
            sizes = [plots.nth(i).bounding_box() for i in range(plots.count())]
            bars = page.locator("section.feature svg path").count()
        finally:
            browser.close()
    assert errors == []
    assert rows == 1 + len(last.drift) and verdicts == ["drift", "drift", "no drift", "drift"]
    assert len(sizes) == len(last.drift) and all(s["width"] > 300 and s["height"] > 100 for s in sizes)
    assert bars > 40  # every plot draws its bars
