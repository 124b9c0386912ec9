"""Every curl example in docs/http-api.md runs against the app and gets the status it claims."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "http-api.md"


def examples() -> list[tuple[str, dict, str | None, int]]:
    found = []
    for line in DOC.read_text().splitlines():
        if not line.startswith("curl "):
            continue
        expected = 200
        if "# answers " in line:
            line, _, status = line.partition("# answers ")
            expected = int(status)
        args = shlex.split(line)
        url = next(a for a in args if a.startswith("localhost:6566"))
        headers, data = {}, None
        for flag, value in zip(args, args[1:]):
            if flag == "-H":
                name, _, text = value.partition(":")
                headers[name.strip()] = text.strip()
            elif flag == "-d":
                data = value
        found.append((url.removeprefix("localhost:6566"), headers, data, expected))
    return found


def test_the_doc_has_examples_of_every_endpoint():
    paths = {path for path, *_ in examples()}
    assert {"/get-online-features", "/push", "/materialize", "/materialize-incremental", "/health", "/ready",
            "/registry/feature-views", "/registry/feature-views/driver_hourly_stats"} <= paths


def test_every_curl_example_answers_as_documented(client):
    for path, headers, data, expected in examples():
        if data is None:
            response = client.get(path, headers=headers)
        else:
            json.loads(data)  # the example itself is valid JSON
            response = client.post(path, content=data, headers=headers)
        assert response.status_code == expected, (path, data, response.text)


def test_documented_error_message(client):
    response = client.post("/get-online-features", json={
        "features": ["driver_hourly_stats:conv_rat"], "entities": {"driver_id": [1001]}})
    assert response.json() == {"error": {
        "type": "NotFoundError",
        "message": "unknown feature 'conv_rat' in view 'driver_hourly_stats'; did you mean 'conv_rate', 'acc_rate'?"}}
