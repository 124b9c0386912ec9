"""The registry contract runs on both backends: every test taking ``registry`` (or
``registry_url``) runs once on a new SQLite file and once on a new PostgreSQL schema."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator

import pytest

from registry import Registry


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


@pytest.fixture
def registry_rows(registry_url: str) -> Callable[[], dict]:
    """A function giving every row of every registry table, read behind the registry's
    back, to show that a refused call changed nothing."""
    if "://" not in registry_url:
        def snapshot() -> dict:
            conn = sqlite3.connect(registry_url)
            try:
                tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
                return {t: sorted(conn.execute(f"SELECT * FROM {t}").fetchall(), key=repr) for t in tables}
            finally:
                conn.close()
        return snapshot

    import psycopg

    from registry.postgres import parse_url

    url = parse_url(registry_url)

    def snapshot() -> dict:
        with psycopg.connect(url.conninfo, autocommit=True) as conn:
            tables = [r[0] for r in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (url.schema,))]
            return {t: sorted(conn.execute(f'SELECT * FROM "{url.schema}"."{t}"').fetchall(), key=repr)
                    for t in tables}

    return snapshot


@pytest.fixture
def registry_sql(registry_url: str) -> Callable[[str], None]:
    """A function running SQL on the registry's database behind its back (on PostgreSQL
    in the registry's schema)."""
    if "://" not in registry_url:
        def run(statement: str) -> None:
            conn = sqlite3.connect(registry_url)
            try:
                conn.executescript(statement)
            finally:
                conn.close()
        return run

    import psycopg

    from registry.postgres import parse_url

    url = parse_url(registry_url)

    def run(statement: str) -> None:
        with psycopg.connect(url.conninfo, autocommit=True) as conn:
            conn.execute(f'SET search_path TO "{url.schema}"')
            conn.execute(statement)

    return run
