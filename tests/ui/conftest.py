"""One world and one server for the UI tests: the example repo after a life
(tests/ui/world.py), served by a real ``featurestore serve`` with API keys and
``auth_reads`` on, and one headless browser logged in to it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ..browser import launch_chromium, needs_chromium
from ..serving.served import Server
from .world import build_world

KEY = "ui-test-key-0123456789"
GRAFANA = "http://grafana.example.invalid:3000"
SCREENSHOTS = Path(os.environ.get("UI_SCREENSHOTS", Path(__file__).resolve().parents[2] / "artifacts" / "ui-screenshots"))


@pytest.fixture(scope="session")
def world(tmp_path_factory):
    built = build_world(tmp_path_factory.mktemp("ui"))
    config = built.repo / "featurestore.yaml"
    config.write_text(config.read_text() + f"serving:\n  auth_reads: true\n  grafana_url: {GRAFANA}\n")
    return built


@pytest.fixture(scope="session")
def ui_server(world):
    """The server, after it served a few predictions of driver_model (so its serving log has rows)."""
    server = Server(world.repo, "--workers", "1", "--no-access-log", env={"FEATURESTORE_API_KEYS": KEY})
    for drivers in ([1001, 1002], [1003], [1004, 1005]):
        answer = server.client.post("/predict/driver_model", json={"entities": {"driver_id": drivers}},
                                    headers={"X-API-Key": KEY})
        assert answer.status_code == 200, answer.text
    yield server
    server.stop()


# Module scope: Playwright's sync API runs an event loop while it is open, and another
# module's own sync_playwright() (tests/monitoring) cannot start beside it.
@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        launched = launch_chromium(p)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def signed_in(browser, ui_server):
    """A browser context that traded the key for the UI's cookie once (``?key=``)."""
    context = browser.new_context(viewport={"width": 1360, "height": 900}, base_url=str(ui_server.client.base_url))
    page = context.new_page()
    page.goto(f"/ui/?key={KEY}")
    assert page.url.endswith("/ui/")  # the key left the address
    page.close()
    yield context
    context.close()


__all__ = ["GRAFANA", "KEY", "SCREENSHOTS", "needs_chromium"]
