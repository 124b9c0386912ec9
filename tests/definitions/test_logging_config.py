"""Feature logging settings on a feature service, in Feast's LoggingConfig shape."""

from datetime import datetime, timezone

import pytest

from featurestore import FeatureStore, FileLoggingDestination, LoggingConfig
from featurestore.errors import DefinitionError
from featurestore.scaffold import init_repo

NOW = datetime(2024, 5, 1, 12, tzinfo=timezone.utc)

LOGGED_SERVICE = '''
from featurestore import FeatureService, FileLoggingDestination, LoggingConfig
from features.driver_stats import driver_hourly_stats

driver_logged = FeatureService(
    name="driver_logged",
    features=[driver_hourly_stats],
    logging_config=LoggingConfig(destination=FileLoggingDestination(path="logs/driver"), sample_rate=0.25),
)
'''


def test_logging_config_round_trips_through_the_registry(tmp_path):
    repo = init_repo(tmp_path / "repo", project="logging_cfg", now=NOW)
    (repo / "features" / "logged.py").write_text(LOGGED_SERVICE)
    with FeatureStore(repo_path=repo, clock=lambda: NOW.timestamp()) as store:
        store.apply()
    with FeatureStore(repo_path=repo, clock=lambda: NOW.timestamp()) as store:
        service = store.contents.feature_services["driver_logged"]
        assert service.logging == LoggingConfig(FileLoggingDestination("logs/driver"), 0.25)
        assert service.logging_config is service.logging
        assert store.contents.feature_services["driver_activity_v1"].logging is None
        assert store.plan() == []  # the spec reads back as written: nothing to change


def test_logging_config_defaults_to_every_read_in_the_offline_store():
    config = LoggingConfig()
    assert config.sample_rate == 1.0 and config.destination == FileLoggingDestination("")


@pytest.mark.parametrize("kwargs, message", [
    ({"sample_rate": 0}, "sample_rate must be a number in (0, 1]"),
    ({"sample_rate": 1.5}, "sample_rate must be a number in (0, 1]"),
    ({"destination": "logs"}, "use FileLoggingDestination(path=...)"),
])
def test_bad_logging_config_says_what_to_do(kwargs, message):
    with pytest.raises(DefinitionError) as info:
        LoggingConfig(**kwargs)
    assert message in str(info.value)


def test_remote_log_destinations_are_refused():
    with pytest.raises(DefinitionError, match="only local folders are supported"):
        FileLoggingDestination(path="s3://bucket/logs")
