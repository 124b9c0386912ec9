"""The offline engine's memory limit, spill folder, threads and progress reports."""

from __future__ import annotations

from datetime import datetime, timezone

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from featurestore.config import load_config
from featurestore.errors import ConfigError, InputError, StoreUnavailableError
from featurestore.offline.base import SourceTable, ViewRequest
from featurestore.offline.duckdb import DuckDBEngine
from featurestore.offline.progress import watch

TS = pa.timestamp("us", tz="UTC")
T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)


def test_a_join_larger_than_the_memory_limit_spills_to_the_temp_directory(tmp_path):
    n = 600_000
    rng = np.random.default_rng(7)
    pq.write_table(pa.table({
        "k": pa.array(rng.integers(0, 10**12, n)),  # wide keys: the key-id path
        "ts": pa.array(T0.timestamp() * 1e6 + rng.integers(0, 10**10, n), pa.int64()).cast(TS),
        "x": pa.array(rng.random(n)),
    }), tmp_path / "src.parquet")
    source = pq.read_table(tmp_path / "src.parquet")
    entities = pa.table({"k": source.column("k"), "ts": source.column("ts")})
    view = ViewRequest("v", SourceTable((str(tmp_path / "src.parquet"),), "ts"), ("k",), ("x",), ("x",))

    def engine(temp: str) -> DuckDBEngine:
        return DuckDBEngine(str(tmp_path), memory_limit="40MB", threads=1, temp_directory=temp)

    out = engine(str(tmp_path / "spill")).point_in_time_join(entities, "ts", [view]).read_all()
    assert out.column("x").equals(source.column("x"))  # every row finds itself
    (tmp_path / "file").write_text("")  # a spill folder that cannot be made: the same join fails
    with pytest.raises(StoreUnavailableError, match="memory_limit '40MB'.*temp_directory"):
        engine(str(tmp_path / "file" / "spill")).point_in_time_join(entities, "ts", [view]).read_all()


def test_the_spill_folder_defaults_to_one_under_the_offline_store(tmp_path):
    setting = "SELECT current_setting('temp_directory') AS t, current_setting('threads') AS n"
    row = DuckDBEngine(str(tmp_path), threads=1).query(setting).to_pylist()[0]
    assert row == {"t": str(tmp_path / ".tmp"), "n": 1}


def test_an_unusable_memory_limit_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="memory_limit 'lots'.*like '8GB'"):
        DuckDBEngine(str(tmp_path), memory_limit="lots").query("SELECT 1")


def repo(tmp_path, offline: str):
    (tmp_path / "featurestore.yaml").write_text(f"project: p\noffline_store:\n{offline}")
    return tmp_path


def test_featurestore_yaml_sets_the_engine(tmp_path):
    config = load_config(repo(tmp_path, "  path: data/off\n  memory_limit: 2GB\n  temp_directory: scratch\n"
                                        "  threads: 1\n"))
    assert config.offline_store == tmp_path / "data" / "off"
    assert config.offline_engine.memory_limit == "2GB"
    assert config.offline_engine.temp_directory == tmp_path / "scratch"
    assert config.offline_engine.threads == 1


@pytest.mark.parametrize("setting, message", [
    ("  memory_limit: lots\n", "memory_limit must be a size like '12GB'"),
    ("  threads: 0\n", "threads must be a whole number"),
    ("  temp_directory: 5\n", "temp_directory must be a folder path"),
])
def test_bad_engine_settings_are_config_errors(tmp_path, setting, message):
    with pytest.raises(ConfigError, match=message):
        load_config(repo(tmp_path, setting))


def test_progress_is_reported_while_a_long_query_runs():
    con = DuckDBEngine(threads=1)._connect()  # as the engine sets it up
    seen = []
    with watch(con, "big join", lambda what, pct: seen.append((what, pct)), after=0, every=0.01):
        con.sql("SELECT count(*) FROM (SELECT range % 1000, sum(range) FROM range(20000000) GROUP BY ALL)").fetchall()
    assert seen and all(what == "big join" and 0 <= pct <= 100 for what, pct in seen)


def test_a_quick_query_reports_nothing():
    con = duckdb.connect()
    seen = []
    with watch(con, "small", lambda what, pct: seen.append(pct), after=5):
        con.sql("SELECT 1").fetchall()
    assert seen == []
