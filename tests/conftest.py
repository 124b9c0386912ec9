"""Fixtures shared by the whole suite.

Redis tests run against a real server: ``redis_url`` is ``REDIS_URL`` when that is set
and answers PING, else a private ``redis-server`` this session starts on a free port (no
persistence) and stops at the end. Without either, Redis tests skip and say why. The
machine's default Redis is never used implicitly.
"""

from __future__ import annotations

import concurrent.futures
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from . import memory_guard, parallel

# The suite shares two cores with the servers it starts: a scheduling hiccup must not trip
# the production 0.25 s online read deadline. tests/serving/test_hung_store.py sets its own.
os.environ.setdefault("FEATURESTORE_READ_TIMEOUT", "5")


def _redis_answers(url: str) -> bool:
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1, retry=Retry(NoBackoff(), 0))
    except ValueError:
        return False
    try:
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False
    finally:
        client.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start_server(command: list[str], log_path: Path, answers: Callable[[], bool], seconds: float,
                  as_user: list[str] = ()) -> subprocess.Popen | None:
    """Start a server writing to ``log_path``; it once ``answers()``, None (stopped) when
    it exits first or does not answer within ``seconds``."""
    log = open(log_path, "wb")
    proc = subprocess.Popen([*as_user, *command], stdout=log, stderr=subprocess.STDOUT)
    log.close()
    deadline = time.monotonic() + seconds
    while proc.poll() is None and time.monotonic() < deadline:
        if answers():
            return proc
        time.sleep(0.02)
    _stop(proc)
    return None


def _start_redis(server: str, folder: Path) -> tuple[subprocess.Popen, str] | None:
    """Start redis-server on a free port; None when it exits (the port was taken meanwhile)."""
    port = _free_port()
    url = f"redis://127.0.0.1:{port}/0"
    proc = _start_server([server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                          "--dir", str(folder)], folder / f"redis-{port}.log", lambda: _redis_answers(url), 30)
    return None if proc is None else (proc, url)


def _stop(proc: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    proc.send_signal(sig)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of a real, reachable Redis for this test session."""
    url = os.environ.get("REDIS_URL")
    if url and _redis_answers(url):
        yield url
        return
    server = shutil.which("redis-server")
    if server is None:
        pytest.skip(
            "no Redis: REDIS_URL is unset or unreachable and redis-server is not on PATH "
            "(install redis-server, as .ci/run does, or set REDIS_URL)"
        )
    folder = tmp_path_factory.mktemp("redis")
    for _ in range(3):
        started = _start_redis(server, folder)
        if started is not None:
            break
    else:
        pytest.fail(f"redis-server did not start; see the logs in {folder}")
    proc, url = started
    try:
        yield url
    finally:
        _stop(proc)


@pytest.fixture
def redis_client(redis_url: str):
    """A plain redis-py client on ``redis_url``, for looking behind a store's back."""
    import redis

    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
def redis_project(redis_client) -> Iterator[str]:
    """A project name no other test uses, so tests can share one Redis (even a developer's
    own, via REDIS_URL) without seeing each other's keys. Projects derived from it by a
    suffix (``f"{redis_project}-b"``) are cleaned up with it."""
    project = f"test-{uuid.uuid4().hex[:12]}"
    yield project
    doomed = list(redis_client.scan_iter(match=f"{project}*", count=1000))
    for start in range(0, len(doomed), 1000):
        redis_client.delete(*doomed[start : start + 1000])


@pytest.fixture
def damage_registry():
    """A function that makes a (closed) registry file unreadable the way a disk fault or
    a stray write does: the root page of every table but ``meta`` becomes garbage bytes.
    The file still opens (its header and schema are intact); every read after that fails
    inside SQLite with "database disk image is malformed"."""
    import sqlite3

    def damage(path: Path) -> None:
        conn = sqlite3.connect(path)
        try:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            page_size = conn.execute("PRAGMA page_size").fetchone()[0]
            pages = [row[0] for row in conn.execute(
                "SELECT rootpage FROM sqlite_master WHERE rootpage > 1 AND tbl_name != 'meta'")]
        finally:
            conn.close()
        with open(path, "r+b") as handle:
            for page in pages:
                handle.seek((page - 1) * page_size)
                handle.write(os.urandom(page_size))

    return damage


@pytest.fixture
def registry_snapshot():
    """A function giving every row of every table of a registry file, to show that a
    refused call changed nothing."""
    import sqlite3

    def snapshot(path) -> dict:
        conn = sqlite3.connect(path)
        try:
            tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            return {t: sorted(conn.execute(f"SELECT * FROM {t}").fetchall()) for t in tables}
        finally:
            conn.close()

    return snapshot


# -- PostgreSQL ------------------------------------------------------------------------
# Registry tests run against a real PostgreSQL too: ``FEATURESTORE_TEST_POSTGRES_URL`` when
# set (``private``: always start one), else the machine's server at 127.0.0.1:5432 (user postgres, trust auth) when it
# answers, else a private server this session starts (initdb + postgres on a free port in
# a temp folder, from /usr/lib/postgresql/*/bin; .ci/run installs Debian's postgresql when
# neither is there). Each test gets its own schema, dropped afterwards.

_MACHINE_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"


def _postgres_answers(url: str) -> bool:
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=2, autocommit=True) as conn:
            conn.execute("SELECT 1")
        return True
    except psycopg.Error:
        return False


def _postgres_bin() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name)
                   if p.parent.parent.name.isdigit() else 0)
    return found[-1].parent if found else None


def _start_postgres(bindir: Path, folder: Path) -> tuple[subprocess.Popen, str]:
    """initdb and start a throwaway server (no fsync) on a free port in ``folder`` (which
    must be reachable by user postgres: PostgreSQL refuses to run as root, so as root it
    runs as that user)."""
    as_user: list[str] = []
    if os.geteuid() == 0:
        import pwd

        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no 'postgres' user to run a private PostgreSQL as")
        os.chown(folder, owner.pw_uid, owner.pw_gid)
        # setpriv execs in place: signals reach the server itself, not a wrapper.
        as_user = ["setpriv", f"--reuid={owner.pw_uid}", f"--regid={owner.pw_gid}", "--init-groups"]
    data = folder / "data"
    subprocess.run([*as_user, str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
                    "-E", "UTF8", "--no-sync"], check=True, capture_output=True)
    port = _free_port()
    url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
    proc = _start_server([str(bindir / "postgres"), "-D", str(data), "-p", str(port), "-k", str(folder),
                          "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off",
                          "-c", "full_page_writes=off"], folder / "postgres.log", lambda: _postgres_answers(url), 60,
                         as_user)
    if proc is None:
        pytest.fail(f"the private PostgreSQL did not start; see {folder / 'postgres.log'}")
    return proc, url


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """The URL of a real, reachable PostgreSQL for this test session."""
    pytest.importorskip("psycopg", reason="psycopg is not installed: pip install -e '.[dev]'")
    wanted = os.environ.get("FEATURESTORE_TEST_POSTGRES_URL")
    for url in () if wanted == "private" else (wanted, _MACHINE_POSTGRES):
        if url and _postgres_answers(url):
            yield url
            return
    bindir = _postgres_bin()
    if bindir is None:
        pytest.skip("no PostgreSQL: nothing answers at 127.0.0.1:5432 and /usr/lib/postgresql/*/bin/initdb "
                    "is missing (apt-get install postgresql, as .ci/run does, or set FEATURESTORE_TEST_POSTGRES_URL)")
    # Not under pytest's temp folder: that is private to this user, and the server may run as another.
    folder = Path(tempfile.mkdtemp(prefix="featurestore-postgres-"))
    try:
        proc, url = _start_postgres(bindir, folder)
        try:
            yield url
        finally:
            _stop(proc, signal.SIGINT)  # a fast shutdown: SIGTERM would wait for every client to leave
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def postgres_registry_url(postgres_url: str) -> Iterator[str]:
    """A registry URL of a schema no other test uses, dropped afterwards."""
    import psycopg

    schema = f"test_{uuid.uuid4().hex[:12]}"
    yield f"{postgres_url}{'&' if '?' in postgres_url else '?'}schema={schema}"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
# -- Redis Cluster -----------------------------------------------------------------------


class LocalCluster:
    """A real Redis Cluster on this machine: 3 primaries and 1 replica each, on free ports
    (each node's cluster bus on its port + 10000), in a temporary folder; failover after
    1 s without an answer (``cluster-node-timeout``)."""

    def __init__(self, server: str, cli: str, folder: Path):
        self.server, self.cli, self.folder = server, cli, folder
        self.ports = _cluster_ports(6)
        self.procs: dict[int, subprocess.Popen] = {}
        for port in self.ports:
            self.start(port)
        subprocess.run([cli, "--cluster", "create", *[f"127.0.0.1:{p}" for p in self.ports], "--cluster-replicas",
                        "1", "--cluster-yes"], check=True, capture_output=True, timeout=60)
        self.wait_healthy()
        self.url = f"redis+cluster://127.0.0.1:{self.ports[0]}"

    def start(self, port: int) -> None:
        node = self.folder / str(port)
        node.mkdir(exist_ok=True)
        proc = _start_server(
            [self.server, "--port", str(port), "--bind", "127.0.0.1", "--cluster-enabled", "yes",
             "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "1000",
             "--cluster-replica-validity-factor", "0", "--save", "", "--appendonly", "no", "--dir", str(node)],
            node / f"redis-{len(list(node.glob('redis-*.log')))}.log",
            lambda: _redis_answers(f"redis://127.0.0.1:{port}/0"), 30)
        if proc is None:
            raise RuntimeError(f"redis-server on port {port} did not start; see the logs in {node}")
        self.procs[port] = proc

    def client(self, port: int):
        import redis

        return redis.Redis(host="127.0.0.1", port=port, socket_timeout=2, socket_connect_timeout=2)

    def nodes(self) -> list[dict]:
        """Every live node's view of itself: port, role, primary's port for a replica."""
        out = []
        for port, proc in self.procs.items():
            if proc.poll() is not None:
                continue
            with self.client(port) as c:
                for line in c.execute_command("CLUSTER", "NODES").decode().splitlines():
                    parts = line.split()
                    if "myself" in parts[2]:
                        out.append({"port": port, "id": parts[0], "primary": "master" in parts[2],
                                    "of": parts[3]})
        return out

    def primaries(self) -> list[int]:
        return sorted(n["port"] for n in self.nodes() if n["primary"])

    def replica_of(self, port: int) -> int:
        nodes = self.nodes()
        node_id = next(n["id"] for n in nodes if n["port"] == port)
        return next(n["port"] for n in nodes if n["of"] == node_id)

    def wait_healthy(self, seconds: float = 30) -> None:
        """Until every live node says the cluster is ok and every primary has a replica in sync."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                if self._healthy():
                    return
            except Exception:  # noqa: BLE001 - a node still starting
                pass
            time.sleep(0.1)
        raise RuntimeError(f"the Redis Cluster in {self.folder} did not become healthy")

    def _healthy(self) -> bool:
        """Every live node: cluster ok, the same slot map naming live primaries only, replicas in sync."""
        live = [p for p, proc in self.procs.items() if proc.poll() is None]
        maps = set()
        for port in live:
            with self.client(port) as c:
                if b"cluster_state:ok" not in c.execute_command("CLUSTER", "INFO"):
                    return False
                info = c.info("replication")
                if info["role"] == "slave" and info.get("master_link_status") != "up":
                    return False
                maps.add(tuple(sorted((int(e[0]), int(e[1]), int(e[2][1])) for e in c.execute_command("CLUSTER",
                                                                                                  "SLOTS"))))
        return len(maps) == 1 and {entry[2] for entry in maps.pop()} <= set(live)

    def kill(self, port: int) -> None:
        proc = self.procs[port]
        proc.kill()
        proc.wait()

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                _stop(proc)


def _cluster_ports(count: int) -> list[int]:
    """Ports free now whose cluster bus port (+10000) is free too."""
    import random

    ports: list[int] = []
    rng = random.Random()
    while len(ports) < count:
        port = rng.randrange(20000, 30000)
        if port in ports:
            continue
        try:
            for p in (port, port + 10000):
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", p))
        except OSError:
            continue
        ports.append(port)
    return ports


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """A real local Redis Cluster (3 primaries, 1 replica each) for this test session."""
    server, cli = shutil.which("redis-server"), shutil.which("redis-cli")
    if server is None or cli is None:
        pytest.skip("no Redis Cluster: redis-server and redis-cli are not on PATH (install redis-server, as .ci/run does)")
    cluster = LocalCluster(server, cli, tmp_path_factory.mktemp("redis-cluster"))
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def redis_cluster_url(redis_cluster: LocalCluster) -> str:
    return redis_cluster.url


# -- offline engines: the engine-independent semantics tests run on both -----------------

#: Spark in local mode for the tests: two cores, one session for the whole test session,
#: few shuffle partitions, no UI, no progress bars (docs/scaling.md: a real cluster differs
#: only in its master and conf).
SPARK_TEST_CONF = {
    "spark.sql.shuffle.partitions": "2",
    "spark.default.parallelism": "2",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.driver.memory": "1g",
    "spark.sql.adaptive.enabled": "false",
    # Tiny queries in a short-lived JVM: the optimizing JIT compiler would spend more CPU
    # than it ever wins back (C1 alone halves the JVM's CPU over the suite), and a 1 GB
    # heap needs no parallel collector threads.
    "spark.driver.extraJavaOptions": "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC",
}


def _spark_missing() -> str | None:
    """Why Spark cannot run here, or None."""
    import importlib.util

    if importlib.util.find_spec("pyspark") is None:
        return "pyspark is not installed (pip install -e '.[dev]')"
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        return "no Java runtime for Spark (.ci/run installs default-jre-headless)"
    return None


def _start_spark():
    from featurestore.offline.spark_session import spark_session as start

    session = start("local[2]", SPARK_TEST_CONF)
    session.sparkContext.setLogLevel("ERROR")
    try:
        _warm_up_spark()
    except Exception:  # noqa: BLE001 - only a head start: the tests themselves say what is wrong
        pass
    return session


def _warm_up_spark() -> None:
    """One small point-in-time join: the first query loads and compiles most of Spark SQL's
    classes (seconds of JVM time), which is better spent beside other tests than in one."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from featurestore.offline.base import SourceTable, ViewRequest
    from featurestore.offline.spark import SparkEngine

    stamps = pa.array([0, 60_000_000], pa.timestamp("us", tz="UTC"))
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "rows.parquet")
        pq.write_table(pa.table({"k": pa.array([1, 2], pa.int64()), "event_timestamp": stamps,
                                 "value": pa.array([1.0, 2.0])}), path)
        request = ViewRequest(name="warm", source=SourceTable((path,), "event_timestamp", None), join_keys=("k",),
                              features=("value",), output_names=("value",), ttl=None)
        entities = pa.table({"k": pa.array([1, 2, 3], pa.int64()), "ts": pa.concat_arrays([stamps, stamps[:1]])})
        SparkEngine(master="local[2]", conf=SPARK_TEST_CONF).point_in_time_join(entities, "ts", [request]).read_all()


_spark_start: concurrent.futures.Future | None = None


def _needs_spark(item: pytest.Item) -> bool:
    callspec = getattr(item, "callspec", None)
    return "spark_session" in item.fixturenames or (
        callspec is not None and callspec.params.get("engine_name") == "spark")


def _begin_spark() -> None:
    """Start the JVM on a thread of its own (once): the tests before the first Spark test
    run meanwhile."""
    global _spark_start
    if _spark_start is None and _spark_missing() is None:
        _spark_start = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="spark-start").submit(_start_spark)


_spark_files: set[Path] = set()


def pytest_collection_finish(session: pytest.Session) -> None:
    """When a selected test needs Spark, its JVM starts now (on two cores, mostly one is
    busy). An xdist worker collects every test but runs only those sent to it: it starts
    Spark when the first test of a file with a Spark test reaches it (tests/parallel.py)."""
    if session.config.option.collectonly:
        return
    if parallel.is_worker(session.config):
        _spark_files.update(item.path for item in session.items if _needs_spark(item))
    elif any(map(_needs_spark, session.items)):
        _begin_spark()


def pytest_configure(config: pytest.Config) -> None:
    memory_guard.start()


def pytest_terminal_summary(terminalreporter) -> None:
    if memory_guard.report():
        terminalreporter.write_sep("!", "memory guard", red=True)
        terminalreporter.write_line(memory_guard.report())


def pytest_runtest_protocol(item: pytest.Item) -> None:
    memory_guard.running(item.nodeid)
    if item.path in _spark_files:
        _begin_spark()


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> None:
    parallel.choose_scheduling(config)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    return parallel.make_scheduler(config, log) if parallel.chosen(config) else None


@pytest.fixture(scope="session")
def spark_session():
    """The test session's SparkSession (local[2]); skips when pyspark or Java is missing."""
    missing = _spark_missing()
    if missing:
        pytest.skip(missing)
    session = _spark_start.result() if _spark_start is not None else _start_spark()
    # Spark's active session is per thread: make it this one's too (it may have started on another).
    session._jvm.SparkSession.setActiveSession(session._jsparkSession)
    yield session
    session.stop()


@pytest.fixture(params=["duckdb", "spark"])
def engine_name(request) -> str:
    """``duckdb`` or ``spark``: a test taking it runs once per offline engine."""
    if request.param == "spark":
        request.getfixturevalue("spark_session")
    return request.param


@pytest.fixture
def offline_engine(engine_name):
    """An offline engine without a root (sources by absolute path), each kind in turn."""
    if engine_name == "spark":
        from featurestore.offline.spark import SparkEngine

        return SparkEngine(master="local[2]", conf=SPARK_TEST_CONF)
    from featurestore.offline.duckdb import DuckDBEngine

    return DuckDBEngine()


@pytest.fixture
def offline_store_section(engine_name) -> str:
    """The ``offline_store`` section of a test repo's featurestore.yaml (``data/offline``)
    for each offline engine in turn; a Spark repo uses the test session's SparkSession."""
    if engine_name == "spark":
        return "offline_store:\n  path: data/offline\n  engine: spark\n  master: local[2]\n"
    return "offline_store: data/offline\n"
