"""Storage: reopening and sharing a registry (both backends); the SQLite file's locations,
schema version, WAL and bad files."""

from __future__ import annotations

import sqlite3

import pytest

import registry
import registry.database
import registry.diff
import registry.errors
import registry.postgres
import registry.records
import registry.sqlite
import registry.store
import registry.tables
import registry.transaction
from registry import ConflictError, ObjectSpec, Registry, RegistryError
from registry.sqlite import resolve_path
from registry.tables import SCHEMA_VERSION


def test_public_names_are_pinned():
    assert sorted(registry.__all__) == [
        "ApplyResult", "Change", "ConflictError", "Edge", "InUseError", "ObjectSpec", "Registry",
        "RegistryError", "StoredObject", "Transaction",
    ]
    assert issubclass(ConflictError, RegistryError)
    for module in (
        registry.database, registry.diff, registry.errors, registry.postgres, registry.records, registry.sqlite,
        registry.store, registry.tables, registry.transaction,
    ):
        for name in module.__all__:
            assert hasattr(module, name), (module.__name__, name)


def test_open_creates_the_file_and_parent_folders(tmp_path):
    path = tmp_path / "a" / "b" / "registry.db"
    with Registry.open(str(path)) as reg:
        assert reg.path == path
    assert path.is_file()


def test_reopening_sees_the_data(registry_url):
    with Registry.open(registry_url) as reg:
        reg.apply("p", [ObjectSpec("entity", "e", {"a": [1, 2]})], ("entity",))
        reg.set_state("p", "k", 5)
    again = registry_url if "://" in registry_url else f"sqlite://{registry_url}"
    with Registry.open(again) as reg:
        assert reg.get("p", "entity", "e").spec == {"a": [1, 2]}
        assert reg.revision("p") == 1
        assert reg.get_state("p", "k") == 5


def test_two_open_registries_see_each_others_writes(registry_url):
    with Registry.open(registry_url) as writer, Registry.open(registry_url) as reader:
        assert reader.revision("p") == 0
        writer.put("p", ObjectSpec("entity", "e", {}))
        assert reader.revision("p") == 1
        assert reader.get("p", "entity", "e") is not None


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:///abs/path.db", "/abs/path.db"),
        ("sqlite:////abs/path.db", "/abs/path.db"),
        ("sqlite:///./rel/path.db", "rel/path.db"),
        ("SQLITE:///abs/path.db?mode=rwc", "/abs/path.db"),
        ("data/registry.db", "data/registry.db"),
    ],
)
def test_locations(url, expected):
    assert str(resolve_path(url)) == expected


@pytest.mark.parametrize("url", ["mysql://user@host/db", "s3://bucket/registry.db", "gs://b/r.db"])
def test_other_url_schemes_are_refused(url):
    with pytest.raises(RegistryError, match="is not supported: use a file path, sqlite:///.* or postgresql://") as info:
        Registry.open(url)
    assert url in str(info.value)


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///", "sqlite://host/x.db", ""])
def test_urls_without_a_path_are_refused(url):
    with pytest.raises(RegistryError):
        Registry.open(url)


def test_file_uses_wal_and_records_its_schema_version(tmp_path):
    path = tmp_path / "registry.db"
    Registry.open(path).close()
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        assert int(row[0]) == SCHEMA_VERSION
    finally:
        conn.close()


def test_newer_schema_version_is_refused(tmp_path):
    path = tmp_path / "registry.db"
    Registry.open(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE meta SET value = '999' WHERE key = 'schema_version'")
    conn.close()
    with pytest.raises(RegistryError, match="schema version 999.*upgrade"):
        Registry.open(path)


def test_corrupt_file_names_the_path(tmp_path):
    path = tmp_path / "registry.db"
    path.write_bytes(b"this is not an sqlite database, just some bytes" * 100)
    with pytest.raises(RegistryError, match=str(path)):
        Registry.open(path)


def test_foreign_sqlite_file_is_refused(tmp_path):
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE users (id INTEGER)")
    conn.close()
    with pytest.raises(RegistryError, match="not a registry"):
        Registry.open(path)


def test_unusable_folder_names_the_path(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    path = blocker / "registry.db"  # its parent is a file, not a folder
    with pytest.raises(RegistryError, match=str(path)):
        Registry.open(path)


def test_closed_registry_raises(registry_url):
    reg = Registry.open(registry_url)
    reg.close()
    reg.close()  # idempotent
    with pytest.raises(RegistryError, match="is closed"):
        reg.revision("p")


def test_readers_are_not_blocked_by_a_writer(registry_url):
    # While another connection holds the write lock (SQLite's WAL, PostgreSQL's MVCC),
    # reads answer at once from the last committed state.
    with Registry.open(registry_url) as reader, Registry.open(registry_url) as writer:
        reader.put("p", ObjectSpec("entity", "e", {"v": 1}))
        with writer.transaction("p") as tx:
            tx.put(ObjectSpec("entity", "e", {"v": 2}))
            assert reader.revision("p") == 1
            assert reader.get("p", "entity", "e").spec == {"v": 1}
        assert reader.revision("p") == 2
        assert reader.get("p", "entity", "e").spec == {"v": 2}
