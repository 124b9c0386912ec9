"""``registry.sqlite.transaction``: the one SQLite write transaction of the registry and the
SQLite online store — all of a block's writes, or none of them."""

import sqlite3

import pytest

from registry.sqlite import transaction


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "t.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("CREATE TABLE parent (id INTEGER PRIMARY KEY)")
    conn.execute("CREATE TABLE child (id INTEGER, parent INTEGER REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED)")
    yield path, conn
    conn.close()


def rows(conn, table):
    return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def test_a_block_that_ends_is_committed(db):
    _, conn = db
    with transaction(conn):
        conn.execute("INSERT INTO parent VALUES (1)")
    assert not conn.in_transaction and rows(conn, "parent") == 1


def test_a_block_that_fails_writes_nothing(db):
    _, conn = db
    with pytest.raises(ZeroDivisionError), transaction(conn):
        conn.execute("INSERT INTO parent VALUES (1)")
        1 / 0
    assert not conn.in_transaction and rows(conn, "parent") == 0


def test_a_commit_that_fails_writes_nothing(db):
    _, conn = db
    with pytest.raises(sqlite3.IntegrityError), transaction(conn):
        conn.execute("INSERT INTO parent VALUES (1)")
        conn.execute("INSERT INTO child VALUES (1, 99)")  # checked at COMMIT (deferred)
    assert not conn.in_transaction and rows(conn, "parent") == rows(conn, "child") == 0


def test_the_write_lock_is_held_from_the_start(db):
    path, conn = db
    other = sqlite3.connect(path, isolation_level=None, timeout=0)
    try:
        with transaction(conn):
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
    finally:
        other.close()
