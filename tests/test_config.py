import dataclasses
from pathlib import Path

import pytest

from featurestore.config import load_config
from featurestore.errors import ConfigError


def write(repo: Path, text: str) -> Path:
    (repo / "featurestore.yaml").write_text(text)
    return repo


def test_defaults_are_embedded_and_relative_to_the_repo(tmp_path):
    config = load_config(write(tmp_path, "project: demo\n"), env={})
    assert config.project == "demo"
    assert config.registry == str(tmp_path / "data" / "registry.db")
    assert config.offline_store == tmp_path / "data" / "offline"
    assert config.online_store.type == "sqlite"
    assert config.online_store.path == str(tmp_path / "data" / "online.db")
    assert config.serving.api_keys == ()


def test_redis_online_store_and_feast_style_address(tmp_path):
    config = load_config(write(tmp_path, "project: demo\nonline_store:\n  type: redis\n"
                                         "  connection_string: localhost:6380\n"), env={})
    assert config.online_store.type == "redis"
    assert config.online_store.connection_string == "redis://localhost:6380"


def test_environment_overrides_the_file(tmp_path):
    write(tmp_path, "project: demo\nregistry: reg.db\nonline_store:\n  type: sqlite\n")
    env = {"FEATURESTORE_REGISTRY": "sqlite:////srv/reg.db", "FEATURESTORE_REDIS_URL": "redis://cache:6379/2",
           "FEATURESTORE_API_KEYS": "k1, k2", "FEATURESTORE_OFFLINE_STORE": "/srv/offline"}
    config = load_config(tmp_path, env=env)
    assert config.registry == "sqlite:////srv/reg.db"
    assert config.online_store.type == "redis"
    assert config.online_store.connection_string == "redis://cache:6379/2"
    assert config.serving.api_keys == ("k1", "k2")
    assert config.offline_store == Path("/srv/offline")


def test_missing_file_says_how_to_create_one(tmp_path):
    with pytest.raises(ConfigError, match="featurestore init"):
        load_config(tmp_path, env={})


@pytest.mark.parametrize("text, message", [
    ("project: [1, 2]\n", "'project' must be a name"),
    ("project: demo\nonline_store:\n  type: cassandra\n", "'cassandra' is not supported"),
    ("project: demo\nserving:\n  api_keys: secret\n", "api_keys must be a list"),
    ("project: demo\nserving:\n  max_entities: lots\n", "must be integers"),
    ("project: demo\nserving:\n  max_features: lots\n", "must be integers"),
    ("project: demo\nserving:\n  body_timeout: -1\n", "body_timeout must be a number of seconds"),
    ("project: demo\nserving:\n  header_timeout: never\n", "header_timeout must be a number of seconds"),
    ("project: demo\nonline_store:\n  type: redis\n  read_timeout: 0\n", "read_timeout must be a number"),
    ("project: demo\nonline_store:\n  type: redis\n  read_timeout: soon\n", "read_timeout must be a number"),
    ("- just\n- a list\n", "must be a mapping"),
    ("project: demo\n  bad: [indent\n", "not valid YAML"),
])
def test_invalid_settings_name_the_problem(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path, text), env={})


def test_feast_style_registry_mapping_and_feast_only_settings_are_accepted(tmp_path):
    text = ("project: demo\nprovider: local\nentity_key_serialization_version: 2\n"
            "registry:\n  registry_type: file\n  path: data/reg.db\n")
    config = load_config(write(tmp_path, text), env={})
    assert config.registry == str(tmp_path / "data" / "reg.db")


@pytest.mark.parametrize("text, message", [
    ("project: demo\nonline_stor:\n  type: redis\n", "unknown setting 'online_stor'; did you mean 'online_store'"),
    ("project: demo\nserving:\n  auth_reads: 'false'\n", "auth_reads must be true or false"),
    ("project: demo\nregistry:\n  registry_type: snowflake\n", "'registry' must be a path"),
    ("project: demo\nserving:\n  api_key: [secret]\n", "serving: unknown setting 'api_key'; did you mean 'api_keys'\\? known: api_keys"),
])
def test_typos_and_wrong_kinds_of_value_are_named(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path, text), env={})


def test_yaml_errors_are_one_line_with_the_line_number(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, "project: demo\nonline_store: [1,\n"), env={})
    assert "\n" not in str(info.value) and "line" in str(info.value)


def test_the_read_timeout_environment_variable_wins_over_the_file(tmp_path):
    (tmp_path / "featurestore.yaml").write_text(
        "project: p\nonline_store:\n  type: redis\n  read_timeout: 0.1\n")
    assert load_config(tmp_path, env={}).online_store.read_timeout == 0.1
    assert load_config(tmp_path, env={"FEATURESTORE_READ_TIMEOUT": "2.5"}).online_store.read_timeout == 2.5
    with pytest.raises(ConfigError, match="FEATURESTORE_READ_TIMEOUT"):
        load_config(tmp_path, env={"FEATURESTORE_READ_TIMEOUT": "soon"})



def _sections():
    """Each settings section: its text with one misspelt key, the misspelling, the key meant,
    how the error names the section, its known keys, and what loads it."""
    from featurestore.config import ServingConfig
    from featurestore.jobs.settings import JobSettings
    from featurestore.serving_log.settings import ServingLogSettings
    from featurestore.streaming.config import StreamSettings
    from monitoring.settings import monitor_settings
    from serving.flight import flight_settings

    top = {"project", "registry", "offline_store", "online_store", "serving", "artifacts", "limits", "flight",
           "monitoring", "scheduler", "serving_log", "streaming"}
    monitor = {"schedule", "window", "min_rows", "share", "null_rate_jump", "methods", "thresholds"}
    flight = {"host", "port", "max_upload_bytes", "slots", "slot_timeout", "batch_rows", "tls_cert", "tls_key"}
    scheduler = {"lock", "retries", "views", "lock_ttl", "lock_wait", "retry_backoff", "poll", "shutdown_grace"}
    names = lambda cls: {f.name for f in dataclasses.fields(cls)}  # noqa: E731
    return [
        ("onlin_store: {}\n", "onlin_store", "online_store", "", top, None),
        ("limits:\n  max_futur: 1d\n", "max_futur", "max_future", ": limits", {"max_future"}, None),
        ("scheduler:\n  retires: 2\n", "retires", "retries", ": scheduler", scheduler, JobSettings.from_config),
        ("serving_log:\n  sample_rat: 0.5\n", "sample_rat", "sample_rate", ": serving_log", names(ServingLogSettings),
         lambda c: ServingLogSettings.from_config(c, env={})),
        ("streaming:\n  redis_ur: redis://x\n", "redis_ur", "redis_url", ": streaming", names(StreamSettings),
         lambda c: StreamSettings.from_config(c, env={})),
        ("monitoring:\n  model: {}\n", "model", "models", ": monitoring", {"models", "prometheus_url"},
         monitor_settings),
        ("monitoring:\n  models:\n    m:\n      windw: 1d\n", "windw", "window", ": monitoring.models.m", monitor,
         monitor_settings),
        ("flight:\n  prot: 1\n", "prot", "port", ": flight", flight, flight_settings),
        ("serving:\n  auth_read: true\n", "auth_read", "auth_reads", ": serving", names(ServingConfig), None),
    ]


@pytest.mark.parametrize("case", range(9))
def test_every_section_names_an_unknown_key_its_section_the_key_meant_and_the_known_keys(tmp_path, case):
    text, typo, meant, section, known, load = _sections()[case]
    with pytest.raises(ConfigError) as refused:
        config = load_config(write(tmp_path, "project: demo\n" + text), env={})
        load(config)
    assert str(refused.value).endswith(f"featurestore.yaml{section}: unknown setting {typo!r}; "
                                       f"did you mean {meant!r}? known: {', '.join(sorted(known))}")


def test_several_unknown_keys_are_all_named(tmp_path):
    with pytest.raises(ConfigError, match=r"limits: unknown settings 'a', 'b'; known: max_future$"):
        load_config(write(tmp_path, "project: demo\nlimits:\n  a: 1\n  b: 2\n"), env={})
