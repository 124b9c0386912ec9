"""Every curl example of docs/predict.md runs against a real server with the example repo's
trained ``driver_model`` and gets the status it claims."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "predict.md"


def examples() -> list[tuple[str, dict, str | None, int]]:
    found = []
    for line in DOC.read_text().splitlines():
        if not line.startswith("curl "):
            continue
        line, _, status = line.partition("# answers ")
        args = shlex.split(line)
        url = next(a for a in args if a.startswith("localhost:6566"))
        headers = {v.partition(":")[0].strip(): v.partition(":")[2].strip() for f, v in zip(args, args[1:]) if f == "-H"}
        data = next((v for f, v in zip(args, args[1:]) if f == "-d"), None)
        found.append((url.removeprefix("localhost:6566"), headers, data, int(status or 200)))
    return found


def test_every_curl_example_answers_as_documented(prediction_server):
    paths = {path for path, *_ in examples()}
    assert {"/predict/driver_model", "/predict/driver_model/1", "/v2/models/driver_model",
            "/v2/models/driver_model/infer"} <= paths
    client = prediction_server.client
    for path, headers, data, expected in examples():
        if data is None:
            response = client.get(path, headers=headers)
        else:
            json.loads(data)  # the example itself is valid JSON
            response = client.post(path, content=data, headers=headers)
        assert response.status_code == expected, (path, data, response.text)
