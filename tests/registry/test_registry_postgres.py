"""What only the PostgreSQL registry has: its URL, a lost or unreachable server, a schema
that is not a registry, and the driver loaded only when a PostgreSQL URL is opened."""

from __future__ import annotations

import socket
import subprocess
import sys
import uuid

import pytest

from registry import ObjectSpec, Registry, RegistryError
from registry.postgres import is_postgres_url, parse_url
from registry.tables import SCHEMA_VERSION

from .conftest import run_sql


@pytest.mark.parametrize("url", ["postgresql://u@h/db", "postgres://u@h/db", "POSTGRESQL://h/db",
                                 "postgresql+psycopg://u:pw@h:5433/db?sslmode=require"])
def test_postgres_urls_are_recognized(url):
    assert is_postgres_url(url)


@pytest.mark.parametrize("location", ["data/registry.db", "sqlite:///x.db", "mysql://h/db", ""])
def test_other_locations_are_not_postgres(location):
    assert not is_postgres_url(location)


def test_the_url_is_shown_without_its_password_and_keeps_libpq_parameters():
    url = parse_url("postgres://fs:s3cret@db.internal:6432/features?sslmode=require&schema=registry")
    assert url.shown == "postgresql://fs:***@db.internal:6432/features?schema=registry"
    assert url.schema == "registry"
    assert url.conninfo.startswith("postgresql://fs:s3cret@db.internal:6432/features?sslmode=require&")
    assert "connect_timeout=5" in url.conninfo and "schema" not in url.conninfo
    assert "connect_timeout=1" in parse_url("postgresql://h/db?connect_timeout=1").conninfo
    assert parse_url("postgresql://h/db").schema == "public"


@pytest.mark.parametrize("schema", ["Bad", "a-b", "x;drop", ""])
def test_a_schema_that_is_not_a_plain_name_is_refused(schema):
    with pytest.raises(RegistryError, match="is not a plain lower-case name"):
        Registry.open(f"postgresql://h/db?schema={schema}")


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_an_unreachable_server_is_one_line_naming_the_url_without_the_password():
    pytest.importorskip("psycopg")
    url = f"postgresql://fs:s3cret@127.0.0.1:{_closed_port()}/features"
    with pytest.raises(RegistryError) as info:
        Registry.open(url)
    message = str(info.value)
    assert message.startswith(f"registry postgresql://fs:***@127.0.0.1:{url.split(':')[3]}") and "is unreachable" in message
    assert "s3cret" not in message and "\n" not in message and "check that the server is up" in message


def test_a_lost_connection_is_opened_again_by_the_next_call(postgres_registry_url):
    import psycopg

    name = f"victim_{uuid.uuid4().hex[:8]}"
    with Registry.open(f"{postgres_registry_url}&application_name={name}") as reg:
        reg.put("p", ObjectSpec("entity", "e", {}))
        with psycopg.connect(parse_url(postgres_registry_url).conninfo, autocommit=True) as admin:
            # A server restart or a failover ends the session the same way.
            ended = admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                                  " WHERE application_name = %s", (name,)).fetchall()
        assert ended == [(True,)]
        assert reg.revision("p") == 1
        reg.put("p", ObjectSpec("entity", "f", {}))
        assert [o.name for o in reg.list("p")] == ["e", "f"]


def test_a_newer_schema_version_is_refused(postgres_registry_url):
    Registry.open(postgres_registry_url).close()
    run_sql(postgres_registry_url, "UPDATE meta SET value = '999' WHERE key = 'schema_version'")
    with pytest.raises(RegistryError, match=rf"schema version 999, newer than this program's {SCHEMA_VERSION}"):
        Registry.open(postgres_registry_url)


def test_a_schema_with_tables_named_like_ours_is_not_taken_for_a_registry(postgres_registry_url):
    import psycopg

    url = parse_url(postgres_registry_url)
    with psycopg.connect(url.conninfo, autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{url.schema}"')
        admin.execute(f'CREATE TABLE "{url.schema}".jobs (id int)')
    with pytest.raises(RegistryError, match=r"has tables named like the registry's \(jobs\) but is not a registry"):
        Registry.open(postgres_registry_url)


def test_without_psycopg_a_postgres_url_says_what_to_install():
    code = ("import sys; sys.modules['psycopg'] = None\n"
            "from registry import Registry, RegistryError\n"
            "try:\n    Registry.open('postgresql://u@h/db')\nexcept RegistryError as exc:\n    print(exc)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "needs the psycopg driver: pip install 'featurestore[postgres]'" in out
