"""Revisions per kind: a reader polls only the kinds it uses; files written before
kinds had revisions are migrated when opened."""

from __future__ import annotations

import sqlite3

import pytest

from registry import ObjectSpec, Registry
from registry.tables import SCHEMA_VERSION

DEFINITIONS = ("entity", "data_source", "feature_view", "feature_service")


def entity(name="driver"):
    return ObjectSpec("entity", name, {"join_keys": ["driver_id"]})


def view(name="stats", ttl=3600):
    return ObjectSpec("feature_view", name, {"ttl": ttl}, (("entity", "driver"),))


def dataset(name="train", rows=10):
    return ObjectSpec("saved_dataset", name, {"rows": rows}, (("feature_view", "stats"),))


def test_a_write_moves_the_revision_of_its_kinds_only(registry):
    registry.apply("p", [entity(), view()], DEFINITIONS)
    assert registry.revision("p") == 1 and registry.revision("p", DEFINITIONS) == 1
    registry.put("p", dataset())
    assert registry.revision("p") == 2
    assert registry.revision("p", DEFINITIONS) == 1
    assert registry.revision("p", ["saved_dataset"]) == 2 and registry.revision("p", "saved_dataset") == 2
    registry.apply("p", [entity(), view(ttl=60)], DEFINITIONS)
    assert (registry.revision("p"), registry.revision("p", DEFINITIONS)) == (3, 3)
    assert registry.revision("p", ["entity"]) == 1 and registry.revision("p", ["feature_view"]) == 3
    assert registry.revision("p", ["saved_dataset"]) == 2


def test_a_removal_moves_its_kind(registry):
    registry.apply("p", [entity(), view()], DEFINITIONS)
    registry.apply("p", [entity()], DEFINITIONS)
    assert registry.revision("p", ["feature_view"]) == 2 and registry.revision("p", ["entity"]) == 1


def test_kinds_never_written_are_at_revision_0(registry):
    assert registry.revision("p", DEFINITIONS) == 0
    registry.put("p", dataset())
    assert registry.revision("p", DEFINITIONS) == 0 and registry.revision("p", []) == 0
    assert registry.revision("other", ["saved_dataset"]) == 0


def test_unchanged_writes_move_nothing(registry):
    registry.apply("p", [entity()], DEFINITIONS)
    registry.put("p", dataset())
    registry.put("p", dataset())
    registry.apply("p", [entity()], DEFINITIONS)
    assert registry.revision("p") == 2 and registry.revision("p", DEFINITIONS) == 1


def _as_version_1(path):
    """Turn a file into what schema version 1 wrote: the same tables without
    kind_revisions (version 1 kept only the project revision)."""
    conn = sqlite3.connect(path)
    try:
        conn.execute("DROP TABLE kind_revisions")
        conn.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
        conn.commit()
    finally:
        conn.close()


def test_a_version_1_file_is_migrated_when_opened(tmp_path):
    path = tmp_path / "registry.db"
    with Registry.open(path) as reg:
        reg.apply("p", [entity(), view()], DEFINITIONS)  # revision 1
        reg.put("p", dataset())  # 2
        reg.apply("p", [entity()], DEFINITIONS)  # 3: removes the view
        reg.put("q", entity("rider"))  # project q, revision 1
    _as_version_1(path)

    with Registry.open(path) as reg:
        assert reg.revision("p") == 3
        assert reg.revision("p", ["entity"]) == 1
        assert reg.revision("p", ["feature_view"]) == 3
        assert reg.revision("p", ["saved_dataset"]) == 2
        assert reg.revision("p", DEFINITIONS) == 3
        assert reg.revision("q", DEFINITIONS) == 1
        assert [o.name for o in reg.list("p")] == ["driver", "train"]
        reg.put("p", dataset(rows=11))  # and it keeps working
        assert reg.revision("p") == 4 and reg.revision("p", DEFINITIONS) == 3
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == (
            str(SCHEMA_VERSION),
        )
    finally:
        conn.close()


def test_a_new_empty_version_1_file_is_migrated_too(tmp_path):
    path = tmp_path / "registry.db"
    Registry.open(path).close()
    _as_version_1(path)
    with Registry.open(path) as reg:
        assert reg.revision("p", DEFINITIONS) == 0
        reg.put("p", entity())
        assert reg.revision("p", DEFINITIONS) == 1
