"""Which settings file a repo is read from, and where the error looks when there is none."""

import logging
from pathlib import Path

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


def feast_redis(tmp_path: Path, *settings: str) -> Path:
    """A Feast ``feature_store.yaml`` in ``tmp_path`` whose online store is Redis with ``settings``
    (``key: value`` lines)."""
    lines = "".join(f"  {line}\n" for line in settings)
    (tmp_path / "feature_store.yaml").write_text(f"project: feast_port\nonline_store:\n  type: redis\n{lines}")
    return tmp_path


@pytest.mark.parametrize("redis_type, url", [
    ("redis_cluster", "redis+cluster://redis-0.redis:6379"),
    ("redis", "redis://redis-0.redis:6379"),
])
def test_feasts_redis_type_sets_whether_redis_is_a_cluster(tmp_path, redis_type, url):
    feast_redis(tmp_path, f"redis_type: {redis_type}", "connection_string: redis-0.redis:6379")
    assert load_config(tmp_path, env={}).online_store.connection_string == url


@pytest.mark.parametrize("settings, words", [
    ("redis_type: redis_sentinel", "redis_type 'redis_sentinel' is not supported; use redis or redis_cluster"),
    ("redis_type: redis_cluster\n  cluster: false", "cluster: false and redis_type: redis_cluster disagree"),
])
def test_a_redis_type_we_cannot_honour_is_refused(tmp_path, settings, words):
    feast_redis(tmp_path, settings, "connection_string: localhost:6379")
    with pytest.raises(ConfigError, match=words):
        load_config(tmp_path, env={})


@pytest.mark.parametrize("connection_string, url", [
    ("localhost:6379,password=s3cret,db=2", "redis://:s3cret@localhost:6379/2"),
    ("cache.internal:6380, ssl=True, username=app, password=p@ss", "rediss://app:p%40ss@cache.internal:6380"),
    ("redis-0:6379,redis-1:6379,ssl=false", "redis://redis-0:6379"),
])
def test_feasts_comma_form_of_the_connection_string_becomes_a_url(tmp_path, connection_string, url):
    config = load_config(feast_redis(tmp_path, f'connection_string: "{connection_string}"'), env={})
    assert config.online_store.connection_string == url
    assert "s3cret" not in repr(config.online_store)


def test_feasts_comma_form_reaches_its_database_on_a_real_redis(tmp_path, redis_url, redis_project):
    import redis

    from featurestore.online.redis_protocol import connect

    address = redis_url.split("://", 1)[1].split("/", 1)[0]
    config = load_config(feast_redis(tmp_path, f"connection_string: {address},db=3,ssl=false"), env={})
    client = connect(config.online_store.connection_string, "feast_port")
    host, port = address.rsplit(":", 1)
    plain = redis.Redis(host=host, port=int(port), db=3)
    try:
        client.set(f"{redis_project}:k", b"v", ex=60)
        assert plain.get(f"{redis_project}:k") == b"v"  # database 3, not the URL's
    finally:
        plain.delete(f"{redis_project}:k")
        client.close()
        plain.close()


@pytest.mark.parametrize("connection_string, words", [
    ("localhost:6379,ssl=maybe", "ssl must be true or false, not 'maybe'"),
    ("localhost:6379,db=zero", "db must be a database number like 0, not 'zero'"),
    ("password=x,db=0", "names no host:port"),
    ("cache:6380,password=p@ss,word", "part 'word' is neither host:port nor key=value; a password with a comma"),
    ("cache:6380,tls=true", "option 'tls' is not understood; Feast's form takes password, username, ssl, db"),
])
def test_a_bad_feast_connection_string_is_refused_by_name(tmp_path, connection_string, words):
    feast_redis(tmp_path, f'connection_string: "{connection_string}"')
    with pytest.raises(ConfigError, match=words):
        load_config(tmp_path, env={})
