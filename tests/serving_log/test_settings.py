"""The ``serving_log:`` section of featurestore.yaml and its on/off switch."""

from __future__ import annotations

import uuid

import pytest

from featurestore.config import load_config
from featurestore.errors import ConfigError
from featurestore.scaffold import init_repo
from featurestore.serving_log.settings import ServingLogSettings


def settings(tmp_path, section: str, env: dict | None = None) -> ServingLogSettings:
    repo = init_repo(tmp_path / f"repo-{uuid.uuid4().hex[:6]}", project="p")
    with open(repo / "featurestore.yaml", "a") as f:
        f.write(section)
    return ServingLogSettings.from_config(load_config(repo, env={}), env or {})


def test_defaults_settings_and_the_environment_switch(tmp_path):
    assert settings(tmp_path, "") == ServingLogSettings(True, 1.0, 100_000, 10_000, 2.0)
    custom = settings(tmp_path, "serving_log:\n  sample_rate: 0.25\n  flush_seconds: 0.5\n  queue_rows: 10\n")
    assert (custom.sample_rate, custom.flush_seconds, custom.queue_rows) == (0.25, 0.5, 10)
    assert not settings(tmp_path, "", {"FEATURESTORE_SERVING_LOG": "off"}).enabled
    assert settings(tmp_path, "serving_log:\n  enabled: false\n", {"FEATURESTORE_SERVING_LOG": "ON"}).enabled


@pytest.mark.parametrize(("section", "env", "message"), [
    ("serving_log:\n  sample_rate: 2\n", {}, "sample_rate must be a number from 0 to 1"),
    ("serving_log:\n  queue_rows: 0\n", {}, "queue_rows must be a whole number of rows above 0"),
    ("serving_log:\n  flush_seconds: 0\n", {}, "flush_seconds must be a number of seconds above 0"),
    ("serving_log:\n  enabled: 'yes'\n", {}, "enabled must be true or false"),
    ("serving_log:\n  flush_row: 5\n", {}, "unknown setting 'flush_row'"),
    ("serving_log: [1]\n", {}, "must be a mapping"),
    ("", {"FEATURESTORE_SERVING_LOG": "maybe"}, "must be 'on' or 'off'"),
])
def test_bad_settings_are_refused_naming_the_setting(tmp_path, section, env, message):
    with pytest.raises(ConfigError, match=message):
        settings(tmp_path, section, env)
