"""The ``flight:`` section of featurestore.yaml: defaults, overrides, and refusals naming the key."""

from __future__ import annotations

import pytest

from featurestore.config import load_config
from featurestore.errors import ConfigError
from serving.flight import flight_settings


def config_with(repo, section: str):
    path = repo / "featurestore.yaml"
    path.write_text(path.read_text() + section)
    return load_config(repo, env={})


def test_the_section_and_the_command_line(repo):
    settings = flight_settings(config_with(repo, "flight:\n  port: 9000\n  slots: 3\n  slot_timeout: 2.5\n"), port=9100)
    assert (settings.port, settings.slots, settings.slot_timeout, settings.scheme) == (9100, 3, 2.5, "grpc+tcp")
    assert flight_settings(load_config(repo, env={})).max_upload_bytes == 256 << 20


@pytest.mark.parametrize("section, message", [
    ("flight:\n  prot: 1\n", "unknown setting 'prot'; did you mean 'port'"),
    ("flight:\n  slots: 0\n", "flight.slots must be a whole number of at least 1"),
    ("flight:\n  slot_timeout: -1\n", "flight.slot_timeout must be a number of seconds"),
    ("flight:\n  tls_cert: server.crt\n", "tls_cert and tls_key go together"),
    ("flight:\n  tls_cert: nope.crt\n  tls_key: nope.key\n", "is not a readable file"),
])
def test_bad_settings_are_refused_naming_the_key(repo, section, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        flight_settings(config_with(repo, section))
