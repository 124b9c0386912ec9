"""The point-in-time benchmark's data: made once (seeded) under bench/data, then reused.

A feature table ``driver_hourly_stats_<rows>.parquet`` has 100 hourly rows per driver
(2% late corrections with the same event time, created later), shuffled within chunks of
100k drivers; an entity set draws drivers (1% unknown) and times over the same 100 hours
(10% past the data, beyond the ttl). Variants of the 10m table: string keys, keys spanning
2**40, and a hive folder partitioned by event date (``date=YYYY-MM-DD``).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data"
ROWS_PER_DRIVER = 100
CHUNK = 100_000  # drivers generated at once (10M rows)
TTL = timedelta(hours=2)
START = datetime(2024, 1, 1, tzinfo=timezone.utc)
HOUR_US = 3_600_000_000
TABLES = {"1m": 10_000, "10m": 100_000, "30m": 300_000, "100m": 1_000_000}  # drivers
VARIANTS = ("plain", "str", "wide", "part")
WIDE = 2**40

# The feature repo over a table, for the benches that go through FeatureStore.
DEFINITIONS = '''
from datetime import timedelta
from featurestore import Entity, FeatureView, Field, FileSource
from featurestore.types import Float32, Int64

driver = Entity(name="driver", join_keys=["driver_id"])
driver_hourly_stats = FeatureView(
    name="driver_hourly_stats",
    entities=[driver],
    ttl=timedelta(hours=2),
    schema=[Field("conv_rate", Float32), Field("acc_rate", Float32), Field("avg_daily_trips", Int64)],
    source=FileSource(path="{path}", timestamp_field="event_timestamp", created_timestamp_field="created",
                      date_partition={partition}),
)
'''


def features(table: str, variant: str = "plain") -> str:
    """The feature source's path (a file, or a folder for ``part``), written unless present."""
    plain = DATA / f"driver_hourly_stats_{table}.parquet"
    if not plain.exists():
        _write_features(plain, TABLES[table])
    if variant == "plain":
        return str(plain)
    target = DATA / (f"driver_hourly_stats_{table}_{variant}" + ("" if variant == "part" else ".parquet"))
    if not Path(target).exists():
        _derive(plain, Path(target), variant)
    return str(target)


def entities(table: str, rows: int, variant: str = "plain", day: int | None = None) -> str:
    """An entity set of ``rows`` over ``table``'s drivers (times on one ``day`` if given)."""
    suffix = "" if variant in ("plain", "part") else f"_{variant}"
    path = DATA / f"entities_{table}_{rows}{'' if day is None else f'_day{day}'}{suffix}.parquet"
    if not path.exists():
        _write_entities(path, TABLES[table], rows, variant, day)
    return str(path)


def _write_features(path: Path, drivers: int) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    DATA.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(20240101 + drivers)
    start_us = int(START.timestamp() * 1_000_000)
    tmp = path.with_name(f".{path.name}.tmp")
    writer = None
    for first in range(0, drivers, CHUNK):
        count = min(CHUNK, drivers - first)
        n = count * ROWS_PER_DRIVER
        driver_id = np.repeat(np.arange(1_000 + first, 1_000 + first + count, dtype=np.int64), ROWS_PER_DRIVER)
        hour = np.tile(np.arange(ROWS_PER_DRIVER, dtype=np.int64), count)
        event_us = start_us + hour * HOUR_US + rng.integers(0, 60_000_000, n)
        corrected = rng.random(n) < 0.02  # late corrections: same event time, created later
        corrected[hour == 0] = False
        event_us[corrected] = event_us[np.flatnonzero(corrected) - 1]
        created_us = event_us + rng.integers(0, 600_000_000, n) + corrected * 3_600_000_000
        order = rng.permutation(n)  # files are not sorted by key or time in real life
        chunk = pa.table({
            "driver_id": driver_id[order],
            "event_timestamp": pa.array(event_us[order], pa.timestamp("us", tz="UTC")),
            "created": pa.array(created_us[order], pa.timestamp("us", tz="UTC")),
            "conv_rate": rng.random(n, dtype=np.float32)[order],
            "acc_rate": rng.random(n, dtype=np.float32)[order],
            "avg_daily_trips": rng.integers(0, 1_000, n)[order],
        })
        writer = writer or pq.ParquetWriter(tmp, chunk.schema)
        writer.write_table(chunk, row_group_size=1_000_000)
    writer.close()
    tmp.rename(path)


def _write_entities(path: Path, drivers: int, rows: int, variant: str, day: int | None) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    DATA.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7 + rows)
    start_us = int(START.timestamp() * 1_000_000)
    ids = rng.integers(1_000, 1_000 + drivers, rows)
    unknown = rng.random(rows) < 0.01
    ids[unknown] = rng.integers(10_000_000, 20_000_000, int(unknown.sum()))
    span = ROWS_PER_DRIVER * HOUR_US
    if day is None:
        ts = start_us + rng.integers(0, span, rows)
        late = rng.random(rows) < 0.10  # past the data: beyond the ttl, so null
        ts[late] = start_us + span + 3 * HOUR_US + rng.integers(0, span, int(late.sum()))
    else:
        ts = start_us + day * 24 * HOUR_US + rng.integers(0, 24 * HOUR_US, rows)
    key = _key(pa.array(ids), variant)
    table = pa.table({"driver_id": key, "event_timestamp": pa.array(ts, pa.timestamp("us", tz="UTC")),
                      "label": rng.random(rows) < 0.5})
    pq.write_table(table, path.with_name(f".{path.name}.tmp"))
    path.with_name(f".{path.name}.tmp").rename(path)


def _key(ids, variant: str):
    """Driver ids as the variant spells them: text, or spread over 2**40 (odd ids moved up)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if variant == "str":
        return pc.binary_join_element_wise("drv-", ids.cast(pa.string()), "")
    if variant == "wide":
        return pc.add(ids, pc.multiply(pc.bit_wise_and(ids, 1), WIDE))
    return ids


def _derive(plain: Path, target: Path, variant: str) -> None:
    """A variant of the plain table, by DuckDB (one pass, bounded memory)."""
    import duckdb

    key = {"str": "'drv-' || CAST(driver_id AS VARCHAR)", "wide": f"driver_id + (driver_id & 1) * {WIDE}"}
    con = duckdb.connect(config={"threads": 2, "memory_limit": "4GB", "preserve_insertion_order": False})
    con.execute("SET TimeZone = 'UTC'")  # the date of a UTC event time
    con.execute("SET enable_progress_bar_print = false")
    tmp = target.with_name(f".{target.name}.tmp")
    if variant == "part":
        con.execute(f"COPY (SELECT *, CAST(event_timestamp AS DATE) AS date FROM read_parquet('{plain}')) "
                    f"TO '{tmp}' (FORMAT parquet, PARTITION_BY (date))")
    else:
        con.execute(f"COPY (SELECT * REPLACE ({key[variant]} AS driver_id) FROM read_parquet('{plain}')) "
                    f"TO '{tmp}' (FORMAT parquet)")
    con.close()
    tmp.rename(target)
