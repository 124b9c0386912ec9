"""Which settings file a repo is read from, and where the error looks when there is none."""

import logging

import pytest

from featurestore.config import load_config
from featurestore.errors import ConfigError

FEAST_YAML = """project: feast_port
registry: data/registry.db
provider: local
online_store:
  type: sqlite
  path: data/online_store.db
entity_key_serialization_version: 3
"""


def test_feasts_feature_store_yaml_is_read_with_a_note(tmp_path, caplog):
    (tmp_path / "feature_store.yaml").write_text(FEAST_YAML)
    with caplog.at_level(logging.WARNING, logger="featurestore"):
        config = load_config(tmp_path, env={})
    assert config.project == "feast_port"
    assert config.online_store.path == str(tmp_path.resolve() / "data" / "online_store.db")
    assert "rename it to featurestore.yaml" in caplog.text


def test_featurestore_yaml_wins_over_feasts_file(tmp_path, caplog):
    (tmp_path / "feature_store.yaml").write_text(FEAST_YAML)
    (tmp_path / "featurestore.yaml").write_text("project: ours\n")
    with caplog.at_level(logging.WARNING, logger="featurestore"):
        assert load_config(tmp_path, env={}).project == "ours"
    assert "note" not in caplog.text


def test_the_missing_file_error_names_a_repo_in_a_parent_folder(tmp_path):
    (tmp_path / "featurestore.yaml").write_text("project: up\n")
    inner = tmp_path / "features" / "deep"
    inner.mkdir(parents=True)
    with pytest.raises(ConfigError) as info:
        load_config(inner, env={})
    assert f"found {tmp_path.resolve() / 'featurestore.yaml'}" in str(info.value)
    assert f"featurestore -r {tmp_path.resolve()}" in str(info.value)


def test_the_missing_file_error_names_feasts_file_below(tmp_path):
    # `feast init my_project` writes my_project/feature_repo/feature_store.yaml.
    (tmp_path / "feature_repo").mkdir()
    (tmp_path / "feature_repo" / "feature_store.yaml").write_text(FEAST_YAML)
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path, env={})
    assert str(tmp_path.resolve() / "feature_repo" / "feature_store.yaml") in str(info.value)


def test_the_missing_file_error_says_how_to_start_when_nothing_is_near(tmp_path):
    with pytest.raises(ConfigError, match="run `featurestore init"):
        load_config(tmp_path, env={})
