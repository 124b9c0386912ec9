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


@pytest.mark.parametrize("redis_type, url", [
    ("redis_cluster", "redis+cluster://redis-0.redis:6379"),
    ("redis", "redis://redis-0.redis:6379"),
])
def test_feasts_redis_type_sets_whether_redis_is_a_cluster(tmp_path, redis_type, url):
    (tmp_path / "feature_store.yaml").write_text(
        f"project: feast_port\nonline_store:\n  type: redis\n  redis_type: {redis_type}\n"
        "  connection_string: redis-0.redis:6379\n")
    assert load_config(tmp_path, env={}).online_store.connection_string == url


@pytest.mark.parametrize("settings, words", [
    ("redis_type: redis_sentinel", "redis_type 'redis_sentinel' is not supported; use redis or redis_cluster"),
    ("redis_type: redis_cluster\n  cluster: false", "cluster: false and redis_type: redis_cluster disagree"),
])
def test_a_redis_type_we_cannot_honour_is_refused(tmp_path, settings, words):
    (tmp_path / "feature_store.yaml").write_text(
        f"project: feast_port\nonline_store:\n  type: redis\n  {settings}\n  connection_string: localhost:6379\n")
    with pytest.raises(ConfigError, match=words):
        load_config(tmp_path, env={})
