"""The UI in a real headless browser (Chromium through Playwright) against a real server:
every page loads without a console error or a request off the server, the lineage graph
leads from a view to the model that reads it, the search finds a feature, the jobs filter
filters. Each page's screenshot goes to artifacts/ui-screenshots/ (``UI_SCREENSHOTS``)."""

from __future__ import annotations

import re

import pytest

from .conftest import GRAFANA, KEY, SCREENSHOTS, needs_chromium

pytestmark = [pytest.mark.integration, needs_chromium]

PAGES = {
    "overview": "/ui/",
    "features": "/ui/features",
    "feature-view": "/ui/features/feature_view/driver_hourly_stats",
    "on-demand-view": "/ui/features/on_demand_feature_view/trip_features",
    "lineage": "/ui/lineage",
    "lineage-of-a-view": "/ui/lineage?kind=feature_view&name=driver_hourly_stats",
    "models": "/ui/models",
    "model": "/ui/models/driver_model",
    "rollout": "/ui/models/driver_model/rollout",
    "monitoring": "/ui/monitoring",
    "model-monitoring": "/ui/monitoring/driver_model",
    "jobs": "/ui/jobs",
}


@pytest.fixture
def page(signed_in, ui_server):
    opened = signed_in.new_page()
    opened.errors = []
    origin = str(ui_server.client.base_url)
    opened.on("console", lambda m: opened.errors.append(f"console: {m.text}") if m.type == "error" else None)
    opened.on("pageerror", lambda e: opened.errors.append(f"page error: {e}"))
    opened.on("request", lambda r: None if r.url.startswith(origin) else opened.errors.append(f"fetched {r.url}"))
    yield opened
    opened.close()


def test_every_page_loads_without_errors(page):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for name, path in PAGES.items():
        answer = page.goto(path)
        assert answer.status == 200, path
        assert page.errors == [], path
        page.wait_for_load_state("load")
        assert page.locator("main h1").count() == 1, path
        page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=True)
    print(f"\nUI screenshots: {SCREENSHOTS}")
    assert page.errors == []


def test_lineage_leads_from_a_view_to_the_model_that_reads_it(page):
    page.goto("/ui/features/feature_view/driver_hourly_stats_fresh")
    page.click("#lineage-link")
    graph = page.locator("#graph svg")
    assert graph.locator("a.node.focus").get_attribute("data-id") == "feature_view:driver_hourly_stats_fresh"
    page.click('#graph a.node[data-id="feature_service:driver_activity_v1"]')  # one step downstream
    page.wait_for_url(re.compile(r"kind=feature_service"))
    page.click('#graph a.node[data-id="model_version:driver_model/1"]')
    page.wait_for_url(re.compile(r"kind=model_version"))
    # From the version, both ways: back up to the source and on to the alias that serves it.
    ids = page.locator("#graph a.node").evaluate_all("nodes => nodes.map(n => n.getAttribute('data-id'))")
    assert "data_source:driver_stats_push" in ids and "model_alias:driver_model@champion" in ids
    page.hover('#graph a.node[data-id="saved_dataset:driver_training"]')
    assert page.locator("#graph path.edge.lit").count() >= 2  # the hovered object's paths are traced
    page.click("#graph a.node.focus")  # the focused object opens its page
    page.wait_for_url(re.compile(r"/ui/models/driver_model#v1$"))
    assert page.locator("main h1").inner_text() == "driver_model"
    assert page.locator("#v1 a.dataset").inner_text() == "driver_training v1"
    types = page.locator("#v1 table.signature td:nth-child(3)").all_inner_texts()
    assert len(types) == 4 and all(t in ("Float32", "Float64", "Int64") for t in types)
    assert page.errors == []


def test_the_search_box_finds_a_feature(page):
    page.goto("/ui/models")
    page.fill("#search", "avg_daily")
    page.press("#search", "Enter")
    page.wait_for_url(re.compile(r"/ui/features\?q=avg_daily"))
    hits = page.locator("#search-results .hits a")
    assert hits.all_inner_texts() == ["driver_hourly_stats:avg_daily_trips", "driver_hourly_stats_fresh:avg_daily_trips"]
    hits.first.click()
    page.wait_for_url(re.compile(r"/features/feature_view/driver_hourly_stats#feature-avg_daily_trips$"))
    assert page.locator("#feature-avg_daily_trips td").first.inner_text() == "avg_daily_trips"
    assert page.errors == []


def test_jobs_filter_by_status_and_view(page):
    page.goto("/ui/jobs")
    page.select_option("#filter-status", "failed")
    page.click("#job-filters button")
    page.wait_for_url(re.compile(r"status=failed"))
    rows = page.locator("#jobs tr.job")
    assert rows.count() == 1 and "the push source's batch file is missing" in rows.first.inner_text()
    page.select_option("#filter-view", "driver_hourly_stats")
    page.select_option("#filter-status", "succeeded")
    page.click("#job-filters button")
    page.wait_for_url(re.compile(r"view=driver_hourly_stats&status=succeeded"))
    statuses = page.locator("#jobs tr.job td:nth-child(4)").all_inner_texts()
    assert statuses and set(statuses) == {"succeeded"}
    assert page.errors == []


def test_monitoring_frames_the_report_with_its_plots(page):
    page.goto("/ui/monitoring/driver_model")
    assert page.locator("#drift tr.alert").count() >= 2
    frame = page.frame_locator("#report")
    plots = frame.locator("section.feature svg")
    plots.first.wait_for()
    assert plots.count() == page.locator("#drift tr").count() - 1  # one plot per feature judged
    assert page.locator("#drift-chart circle").count() == 2  # one point per run
    assert page.locator(f'a[href^="{GRAFANA}/d/featurestore"]').count() >= 1
    assert page.errors == []


def test_the_login_form_in_a_browser(browser, ui_server):
    context = browser.new_context(base_url=str(ui_server.client.base_url))
    try:
        page = context.new_page()
        answer = page.goto("/ui/models/driver_model/rollout")
        assert answer.status == 401
        page.fill("#key", KEY)
        page.click("form.login button")
        page.wait_for_url(re.compile(r"/ui/models/driver_model/rollout$"))
        assert page.locator("#rollout-state").inner_text() == "rolled_back"
        assert page.locator("#weight-chart circle").count() == 4
    finally:
        context.close()
