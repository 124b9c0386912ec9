"""Schedules, durations and the scheduler: section of featurestore.yaml."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from featurestore.config import load_config
from featurestore.errors import ConfigError
from featurestore.jobs import JobSettings, Schedule, parse_duration

from .conftest import make_repo


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


@pytest.mark.parametrize("text, seconds", [
    ("1d", 86400), ("6h", 21600), ("15m", 900), ("90s", 90), ("1h30m", 5400), ("2w", 1209600),
    (" 1D ", 86400), (3600, 3600), (timedelta(minutes=5), 300),
])
def test_parse_duration(text, seconds):
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "1x", "d", "0s", "-1h", "1 day", True, None])
def test_bad_durations_say_how_to_write_one(text):
    with pytest.raises(ConfigError, match="duration|longer than zero"):
        parse_duration(text)


def test_cron_schedule_latest_and_next_fire_times():
    s = Schedule.parse("*/15 * * * *")
    assert s.text == "*/15 * * * *" and s.interval is None
    assert s.latest(at("2024-05-01T12:07:00")) == at("2024-05-01T12:00:00")
    assert s.latest(at("2024-05-01T12:15:00")) == at("2024-05-01T12:15:00")
    assert s.next(at("2024-05-01T12:15:00")) == at("2024-05-01T12:30:00")


def test_sparse_cron_schedules_look_far_enough_back():
    assert Schedule.parse("@monthly").latest(at("2024-05-20T08:00:00")) == at("2024-05-01T00:00:00")
    assert Schedule.parse("@yearly").latest(at("2024-05-20T08:00:00")) == at("2024-01-01T00:00:00")
    assert Schedule.parse("0 0 29 2 *").latest(at("2025-03-01T00:00:00")) == at("2024-02-29T00:00:00")


def test_interval_schedules_fire_at_multiples_of_the_interval_since_the_epoch():
    # Independent of when a process started, so every scheduler computes the same windows.
    for value in ("1h", "every 1h", timedelta(hours=1), 3600):
        s = Schedule.parse(value)
        assert s.text == "every 1h"
        assert s.latest(at("2024-05-01T12:59:59")) == at("2024-05-01T12:00:00")
        assert s.next(at("2024-05-01T12:00:00")) == at("2024-05-01T13:00:00")
    trigger = Schedule.parse("15m").trigger()
    assert trigger.get_next_fire_time(None, at("2024-05-01T12:01:00")) == at("2024-05-01T12:15:00")


@pytest.mark.parametrize("value, message", [
    ("61 * * * *", "not a valid cron"),
    ("sometimes", "'sometimes' is not a schedule; a schedule is a cron expression of five fields"),
    (["0 * * * *"], r"is not a schedule; a schedule is .* or an interval \('15m', 'every 1h', a timedelta\)"),
    (timedelta(seconds=1.5), "whole seconds"),
])
def test_bad_schedules_name_the_value(value, message):
    with pytest.raises(ConfigError, match=message):
        Schedule.parse(value)


def test_settings_from_featurestore_yaml(tmp_path):
    repo = make_repo(tmp_path / "r", scheduler_yaml=(
        "scheduler:\n  lock: registry\n  lock_ttl: 2m\n  lock_wait: 0\n  retries: 4\n  retry_backoff: 10s\n"
        "  poll: 5s\n  views:\n    driver_hourly_stats: '@hourly'\n    driver_hourly_stats_fresh: null\n"
    ))
    s = JobSettings.from_config(load_config(repo, env={}))
    assert (s.lock, s.lock_ttl, s.lock_wait, s.retries, s.retry_backoff, s.poll) == ("registry", 120, 0, 4, 10, 5)
    assert s.schedule_for("driver_hourly_stats", "*/5 * * * *") == Schedule.parse("0 * * * *")
    assert s.schedule_for("driver_hourly_stats_fresh", "*/5 * * * *") is None
    assert s.schedule_for("other", timedelta(minutes=5)) == Schedule.parse("5m")
    assert s.schedule_for("other", None) is None


@pytest.mark.parametrize("section, message", [
    ("scheduler: 5", "must be a mapping"),
    ("scheduler:\n  lock_tll: 1m", "unknown setting 'lock_tll'"),
    ("scheduler:\n  lock: etcd", "lock must be one of"),
    ("scheduler:\n  retries: -1", "retries must be"),
    ("scheduler:\n  views:\n    v: whenever", "scheduler.views.v"),
])
def test_bad_settings_name_the_setting(tmp_path, section, message):
    repo = make_repo(tmp_path / "r", scheduler_yaml=section)
    with pytest.raises(ConfigError, match=message):
        JobSettings.from_config(load_config(repo, env={}))
