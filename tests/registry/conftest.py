"""The registry contract runs on both backends: every test taking ``registry`` (or
``registry_url``) runs once on a new SQLite file and once on a new PostgreSQL schema."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator

import pytest

from registry import Registry
from registry.postgres import parse_url


@pytest.fixture(params=["sqlite", "postgresql"])
def registry_url(request, tmp_path) -> str:
    """Where a new, empty registry lives: a file path or a PostgreSQL URL."""
    if request.param == "sqlite":
        return str(tmp_path / "registry.db")
    return request.getfixturevalue("postgres_registry_url")


@pytest.fixture
def registry(registry_url: str) -> Iterator[Registry]:
    with Registry.open(registry_url) as opened:
        yield opened


def all_rows(location: str) -> dict:
    """Every row of every registry table at ``location``, read behind the registry's back."""
    if "://" not in location:
        conn = sqlite3.connect(location)
        try:
            tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            return {t: sorted(conn.execute(f"SELECT * FROM {t}").fetchall(), key=repr) for t in tables}
        finally:
            conn.close()
    import psycopg

    url = parse_url(location)
    with psycopg.connect(url.conninfo, autocommit=True) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (url.schema,))]
        return {t: sorted(conn.execute(f'SELECT * FROM "{url.schema}"."{t}"').fetchall(), key=repr) for t in tables}


def run_sql(location: str, statement: str) -> None:
    """Run SQL on the registry's database behind its back (on PostgreSQL, in its schema)."""
    if "://" not in location:
        conn = sqlite3.connect(location)
        try:
            conn.executescript(statement)
        finally:
            conn.close()
        return
    import psycopg

    url = parse_url(location)
    with psycopg.connect(url.conninfo, autocommit=True) as conn:
        conn.execute(f'SET search_path TO "{url.schema}"')
        conn.execute(statement)


@pytest.fixture
def registry_rows(registry_url: str) -> Callable[[], dict]:
    """A function giving every row of every table of the test's registry, to show that a
    refused call changed nothing."""
    return lambda: all_rows(registry_url)


@pytest.fixture
def registry_sql(registry_url: str) -> Callable[[str], None]:
    """A function running SQL on the test's registry behind its back."""
    return lambda statement: run_sql(registry_url, statement)
