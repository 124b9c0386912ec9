"""Two applies at once: the second sees the conflict instead of silently undoing the first.

An apply commits against the definitions its store last read (first load, ``plan``, its
own last apply); a definition written by anyone else since is a ConflictError that says
to plan again, unless the apply is forced."""

from __future__ import annotations

import re

import pytest
from click.testing import CliRunner

import featurestore.store as store_module
from featurestore import FeatureStore
import featurestore.cli.repo_commands  # noqa: F401 - registers apply
from featurestore.cli.main import cli
from featurestore.errors import ConflictError
from registry import ObjectSpec

from .conftest import NOW

DEFS = "features/driver_stats.py"


def set_ttl(repo, hours: int) -> None:
    """Edit the definitions: driver_hourly_stats's ttl becomes ``hours``."""
    path = repo / DEFS
    head, sep, tail = path.read_text().partition("driver_hourly_stats = FeatureView(")
    tail = re.sub(r"ttl=timedelta\([^)]*\)", f"ttl=timedelta(hours={hours})", tail, count=1)
    path.write_text(head + sep + tail)


def ttl_hours(store) -> float:
    spec = store.registry.get(store.project, "feature_view", "driver_hourly_stats").spec
    return spec["ttl_seconds"] / 3600


def other_store(repo) -> FeatureStore:
    return FeatureStore(repo_path=repo, clock=lambda: NOW.timestamp())


def test_an_apply_after_someone_elses_apply_is_a_conflict_until_planned_again(store, repo):
    with other_store(repo) as other:
        set_ttl(repo, 6)
        other.apply()  # revision moves under `store`
    revision = store.registry.revision(store.project)
    set_ttl(repo, 12)
    with pytest.raises(ConflictError, match=r"changed while this apply was prepared.*plan.*--force"):
        store.apply()
    assert store.registry.revision(store.project) == revision and ttl_hours(store) == 6
    assert [c.fields for c in store.plan()] == [("ttl_seconds",)]  # plan again: 6h -> 12h
    store.apply()
    assert ttl_hours(store) == 12


def race_during_load(repo, monkeypatch) -> None:
    """Make the next apply's reading of the repo end with another store applying a change
    (a 6h ttl): the race of two applies, with the other one landing in between."""
    with other_store(repo) as first:
        first.apply()
    real_load = store_module.load_repo

    def load_then_race(*args, **kwargs):
        contents = real_load(*args, **kwargs)
        monkeypatch.setattr(store_module, "load_repo", real_load)
        with other_store(repo) as racer:
            set_ttl(repo, 6)
            racer.apply()
        return contents

    monkeypatch.setattr(store_module, "load_repo", load_then_race)


def test_an_apply_landing_while_another_is_prepared_makes_the_second_fail(repo, monkeypatch):
    """The race itself: B commits while A is between reading the registry and committing."""
    race_during_load(repo, monkeypatch)
    with other_store(repo) as a:
        set_ttl(repo, 12)
        with pytest.raises(ConflictError, match="another apply ran in between"):
            a.apply()
        assert ttl_hours(a) == 6  # the racer's change stands


def test_a_forced_apply_overwrites_a_concurrent_change(store, repo):
    with other_store(repo) as other:
        set_ttl(repo, 6)
        other.apply()
    set_ttl(repo, 12)
    assert store.apply(force=True).changes
    assert ttl_hours(store) == 12


def test_cli_apply_reports_the_conflict_in_one_line_and_force_applies(repo, monkeypatch):
    race_during_load(repo, monkeypatch)
    result = CliRunner().invoke(cli, ["-r", str(repo), "apply"])
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert "another apply ran in between" in result.output and "--force" in result.output
    result = CliRunner().invoke(cli, ["-r", str(repo), "apply", "--force"])
    assert result.exit_code == 0, result.output


def test_a_write_of_another_kind_meanwhile_is_not_a_conflict(store, repo, monkeypatch):
    """A saved dataset or a model registered while an apply is prepared changes no
    definition: the apply goes through."""
    real_load = store_module.load_repo

    def load_then_write(*args, **kwargs):
        contents = real_load(*args, **kwargs)
        store.registry.put(store.project, ObjectSpec("saved_dataset", "meanwhile", {"rows": 1}))
        return contents

    monkeypatch.setattr(store_module, "load_repo", load_then_write)
    set_ttl(repo, 12)
    assert store.apply().changes and ttl_hours(store) == 12
