"""docs/http-api.md shows every endpoint, and its documented error is the one served.

(tests/docs/test_code_blocks.py runs every curl line of the page against a real server.)"""

from __future__ import annotations

import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "http-api.md"


def test_the_doc_has_examples_of_every_endpoint():
    paths = {path for path in re.findall(r"^curl .*?localhost:6566(/[\w/-]*)", DOC.read_text(), re.M)}
    assert {"/get-online-features", "/push", "/materialize", "/materialize-incremental", "/health", "/ready",
            "/registry/feature-views", "/registry/feature-views/driver_hourly_stats"} <= paths


def test_documented_error_message(client):
    response = client.post("/get-online-features", json={
        "features": ["driver_hourly_stats:conv_rat"], "entities": {"driver_id": [1001]}})
    assert response.json() == {"error": {
        "type": "NotFoundError",
        "message": "unknown feature 'conv_rat' in view 'driver_hourly_stats'; did you mean 'conv_rate', 'acc_rate'?"}}
