"""How a browser passes the API key to the UI when ``auth_reads`` is on (docs/ui.md): the
login form or ``?key=`` once, traded for a cookie that holds no key. Real HTTP."""

from __future__ import annotations

import httpx
import pytest

from .conftest import KEY

pytestmark = pytest.mark.integration


def _get(server, path, **kwargs):
    return server.client.get(path, follow_redirects=False, **kwargs)


def test_without_a_key_a_page_answers_the_login_form(ui_server):
    answer = _get(ui_server, "/ui/models")
    assert answer.status_code == 401 and answer.headers["content-type"].startswith("text/html")
    assert 'name="key"' in answer.text and 'value="/ui/models"' in answer.text  # comes back here after
    assert _get(ui_server, "/ui/static/lineage.js").status_code == 401
    assert _get(ui_server, "/ui/static/ui.css").status_code == 200  # the login page's own style


def test_a_key_header_opens_the_pages_as_for_every_read(ui_server):
    answer = _get(ui_server, "/ui/models", headers={"X-API-Key": KEY})
    assert answer.status_code == 200 and "driver_model" in answer.text
    assert _get(ui_server, "/ui/models", headers={"X-API-Key": "wrong"}).status_code == 401


def test_a_key_in_the_address_becomes_a_cookie_without_the_key(ui_server):
    answer = _get(ui_server, f"/ui/jobs?status=failed&key={KEY}")
    assert answer.status_code == 303 and answer.headers["location"] == "/ui/jobs?status=failed"
    cookie = answer.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/ui/" in cookie
    assert KEY not in cookie
    token = answer.cookies["featurestore_ui"]
    with httpx.Client(base_url=ui_server.client.base_url, cookies={"featurestore_ui": token}) as browser:
        page = browser.get("/ui/jobs?status=failed")
        assert page.status_code == 200 and "driver_hourly_stats_fresh" in page.text
        # The cookie is the UI's only: the JSON API still wants the key itself.
        assert browser.get("/registry/feature-views").status_code == 401
    with httpx.Client(base_url=ui_server.client.base_url, cookies={"featurestore_ui": token[:-1] + "0"}) as forged:
        assert forged.get("/ui/jobs").status_code == 401
    refused = _get(ui_server, "/ui/jobs?key=wrong")
    assert refused.status_code == 403 and "not valid" in refused.text and "set-cookie" not in refused.headers


def test_the_login_form_sets_the_cookie_and_goes_where_it_was_asked(ui_server):
    good = ui_server.client.post("/ui/login", data={"key": KEY, "next": "/ui/monitoring"})
    assert good.status_code == 303 and good.headers["location"] == "/ui/monitoring"
    assert "featurestore_ui" in good.cookies
    bad = ui_server.client.post("/ui/login", data={"key": "nope", "next": "/ui/monitoring"})
    assert bad.status_code == 403 and "not valid" in bad.text
    away = ui_server.client.post("/ui/login", data={"key": KEY, "next": "//evil.example/ui/"})
    assert away.headers["location"] == "/ui/"  # never sends the browser off the UI
    out = _get(ui_server, "/ui/logout")
    assert out.status_code == 303 and 'featurestore_ui=""' in out.headers["set-cookie"]


def test_errors_are_pages_and_the_ui_stays_out_of_the_api_docs(ui_server):
    headers = {"X-API-Key": KEY}
    missing = _get(ui_server, "/ui/models/nosuch", headers=headers)
    assert missing.status_code == 404 and "text/html" in missing.headers["content-type"]
    assert "nosuch" in missing.text and "driver_model" in missing.text  # names the known ones
    assert _get(ui_server, "/ui/no/such/page", headers=headers).status_code == 404
    assert _get(ui_server, "/ui/jobs?status=nope", headers=headers).status_code == 422
    assert _get(ui_server, "/ui").headers["location"] == "/ui/"
    paths = _get(ui_server, "/openapi.json", headers=headers).json()["paths"]
    assert not [p for p in paths if p.startswith("/ui")]


def test_a_saved_dataset_page_shows_no_server_path(ui_server, world):
    answer = _get(ui_server, "/ui/features/saved_dataset/driver_training", headers={"X-API-Key": KEY})
    assert answer.status_code == 200 and "datasets/driver_training/" in answer.text
    assert str(world.repo) not in answer.text
