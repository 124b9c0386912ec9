"""plan and apply refuse schedules the scheduler could not run, saying what is accepted."""

import pytest

from featurestore import FeatureStore
from featurestore.errors import ConfigError

from .conftest import NOW

FORMS = "a schedule is a cron expression of five fields, in UTC ('*/15 * * * *'), @hourly"


def scheduled(repo, schedule: str):
    features = repo / "features" / "driver_stats.py"
    text = features.read_text()
    features.write_text(text.replace("    online=True,\n", f"    online=True,\n    schedule={schedule!r},\n", 1))


def with_scheduler(repo, section: str):
    config = repo / "featurestore.yaml"
    config.write_text(config.read_text() + section)


def open_store(repo):
    return FeatureStore(repo_path=repo, clock=lambda: NOW.timestamp())


@pytest.mark.parametrize("schedule, reason", [
    ("61 * * * *", "is not a valid cron expression"),
    ("every hour", "is not a schedule"),
])
def test_a_bad_schedule_fails_plan_and_apply_naming_the_view_and_the_accepted_forms(repo, schedule, reason):
    scheduled(repo, schedule)
    with open_store(repo) as store:
        for step in (store.plan, store.apply):
            with pytest.raises(ConfigError) as info:
                step()
            message = str(info.value)
            assert f"feature view 'driver_hourly_stats': schedule {schedule!r} {reason}" in message
            assert FORMS in message
        assert store.list_feature_views() == []  # nothing was applied


def test_a_good_schedule_applies(repo):
    scheduled(repo, "every 15m")
    with open_store(repo) as store:
        store.apply()
        assert store.get_feature_view("driver_hourly_stats").schedule == "every 15m"


def test_scheduler_views_must_name_feature_views_of_the_repo(repo):
    with_scheduler(repo, "scheduler:\n  views:\n    driver_hourly_stats: 5m\n    driver_stats: 1h\n")
    with open_store(repo) as store, pytest.raises(ConfigError) as info:
        store.apply()
    assert str(info.value) == (
        "featurestore.yaml: scheduler.views names 'driver_stats', which is not a feature view of this repo "
        "(known: driver_hourly_stats, driver_hourly_stats_fresh); fix or remove the entry")


def test_a_bad_schedule_in_scheduler_views_fails_apply(repo):
    with_scheduler(repo, "scheduler:\n  views:\n    driver_hourly_stats: every hour\n")
    with open_store(repo) as store, pytest.raises(ConfigError, match=r"scheduler\.views\.driver_hourly_stats "
                                                                      r"'every hour' is not a schedule; a schedule is"):
        store.apply()
