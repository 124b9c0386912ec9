"""The serving log writer and reader on a real folder: files per name and date, time
filters, logged answers of mixed shapes and types, drops counted when the queue is full
or rows cannot be written, concurrent writers, and a writer killed mid-write leaving only
whole files."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from featurestore.online.read import OnlineResponse
from featurestore.serving_log import META_SCHEMA, QUEUE_FULL, UNWRITABLE, LogEntry, ServingLogWriter, read_log
from featurestore.serving_log.layout import FOLDER, TIME_TYPE, log_folder
from featurestore.serving_log.writer import SLICE_REQUESTS, SLICE_SECONDS
from featurestore.types import Float32, Int64, String

DAY1 = datetime(2024, 5, 1, 23, 59, 59, tzinfo=timezone.utc)
US = 1_000_000


def us(t: datetime) -> int:
    return int(t.timestamp()) * US


def rows(start_us: int, n: int, step_us: int = US, driver: int = 1) -> dict[str, list]:
    return {"log_time": [start_us + i * step_us for i in range(n)], "request_id": [f"r{i}" for i in range(n)],
            "model": ["m"] * n, "version": [1] * n, "variant": ["stable"] * n, "driver_id": [driver] * n,
            "conv_rate": [0.5] * n, "conv_rate__status": ["PRESENT"] * n, "conv_rate__event_timestamp": [start_us] * n}


def read(root, name: str, start_us=None, end_us=None) -> pa.Table:
    return read_log(log_folder(root, name), start_us, end_us)


TYPES = {"log_time": TIME_TYPE, "conv_rate__event_timestamp": TIME_TYPE, "conv_rate": pa.float32()}


def test_rows_land_in_whole_files_per_name_and_date_and_read_back_in_time_order(tmp_path):
    counted = []
    writer = ServingLogWriter(tmp_path, flush_seconds=60, on_written=lambda name, n: counted.append((name, n)))
    writer.write("m", rows(us(DAY1), 3), TYPES)  # 23:59:59, 00:00:00 and 00:00:01: two dates
    writer.write("other", rows(us(DAY1), 1), TYPES)
    assert writer.flush(10)
    files = sorted(p.relative_to(tmp_path).parent.as_posix() for p in tmp_path.rglob("*.parquet"))
    assert files == [f"{FOLDER}/m/date=2024-05-01", f"{FOLDER}/m/date=2024-05-02", f"{FOLDER}/other/date=2024-05-01"]
    assert not list(tmp_path.rglob(".*"))  # no temporary files left
    assert sorted(counted) == [("m", 1), ("m", 2), ("other", 1)] and writer.written == 4

    table = read(tmp_path, "m")
    assert table.schema.field("log_time").type == TIME_TYPE
    assert table.schema.field("conv_rate").type == pa.float32()
    assert table.column("request_id").to_pylist() == ["r0", "r1", "r2"]
    assert table.schema.names[:5] == META_SCHEMA.names
    writer.close()


def test_time_filters_take_start_and_leave_out_end(tmp_path):
    writer = ServingLogWriter(tmp_path, flush_rows=2)  # several files
    writer.write("m", rows(us(DAY1), 5), TYPES)
    writer.write("m", rows(us(DAY1) + 5 * US, 5), TYPES)
    writer.close()
    t0 = DAY1

    def ids(start=None, end=None):
        return [t.second for t in read(tmp_path, "m", start and us(start), end and us(end))
                .column("log_time").to_pylist()]

    assert len(ids()) == 10
    assert ids(t0 + timedelta(seconds=2), t0 + timedelta(seconds=4)) == [1, 2]  # 00:00:01, 00:00:02
    assert ids(start=t0 + timedelta(seconds=8)) == [7, 8]
    assert ids(end=t0 + timedelta(seconds=1)) == [59]
    assert ids(t0 + timedelta(days=3)) == []
    assert read(tmp_path, "never-logged").schema == META_SCHEMA


def test_a_full_queue_drops_and_counts_rows_without_waiting(tmp_path):
    drops = []
    writer = ServingLogWriter(tmp_path, queue_rows=5, flush_seconds=60,
                              on_dropped=lambda name, n, reason: drops.append((name, n, reason)))
    assert writer.write("m", rows(us(DAY1), 4), TYPES)
    began = time.perf_counter()
    assert not writer.write("m", rows(us(DAY1), 2), TYPES)
    assert time.perf_counter() - began < 0.5
    assert drops == [("m", 2, QUEUE_FULL)] and writer.dropped == 2
    writer.close()
    assert writer.written == 4 and read(tmp_path, "m").num_rows == 4
    assert not writer.write("m", rows(us(DAY1), 1), TYPES)  # closed: dropped, counted
    assert writer.dropped == 3


def test_rows_that_do_not_fit_their_columns_are_dropped_and_counted_and_the_rest_written(tmp_path):
    drops = []
    writer = ServingLogWriter(tmp_path, flush_seconds=60, on_dropped=lambda name, n, reason: drops.append((n, reason)))
    bad = rows(us(DAY1), 2)
    bad["conv_rate"] = ["not a number", 1.0]
    writer.write("m", bad, TYPES)
    writer.write("m", rows(us(DAY1), 3), TYPES)
    writer.close()
    assert drops == [(2, UNWRITABLE)]
    assert read(tmp_path, "m").num_rows == 3 and writer.written == 3


def response(ids: list, conv: list, dtype=Float32, stamp_us: int = 0) -> OnlineResponse:
    """An online answer: join key driver_id, then feature conv_rate."""
    n = len(ids)
    return OnlineResponse(["driver_id", "conv_rate"], [ids, conv], [["PRESENT"] * n, ["PRESENT"] * n],
                          [[stamp_us] * n, [stamp_us] * n], [Int64, dtype])


def entry(request_id: str, ids: list, conv: list, *, fields=None, predictions=None, status="ok", version=1,
          dtype=Float32) -> LogEntry:
    return LogEntry(response(ids, conv, dtype, us(DAY1)), 1, fields, log_time_us=us(DAY1), request_id=request_id,
                    model="m", version=version, predictions=[0.5] * len(ids) if predictions is None else predictions,
                    status=status, latency_ms=1.5)


def test_entries_of_mixed_shapes_land_row_by_row_with_the_columns_and_types_of_the_layout(tmp_path):
    writer = ServingLogWriter(tmp_path, flush_seconds=60)
    writer.write_entry("m", entry("ten", list(range(10)), [0.25] * 10, fields={"driver_id": list(range(10)),
                                                                                  "city": ["paris"] * 10}))
    writer.write_entry("m", entry("one", [7], [None], fields=[{"driver_id": 7, "city": "rome"}]))
    writer.write_entry("m", entry("none", [], [], fields={"city": []}))  # no rows: nothing to write
    writer.write_entry("m", entry("failed", [8, 9], [0.5, 0.75], fields={"city": "oslo"}, predictions=[None, None],
                                  status="model_error"))
    writer.close()
    assert writer.written == 13 and writer.dropped == 0
    table = read(tmp_path, "m")
    assert table.schema == pa.schema([
        ("log_time", TIME_TYPE), ("request_id", pa.string()), ("model", pa.string()), ("version", pa.int64()),
        ("variant", pa.string()), ("driver_id", pa.int64()), ("city", pa.string()), ("conv_rate", pa.float32()),
        ("conv_rate__status", pa.string()), ("conv_rate__event_timestamp", TIME_TYPE), ("prediction", pa.float64()),
        ("status", pa.string()), ("latency_ms", pa.float64())])
    rows_by_id = {}
    for row in table.to_pylist():
        rows_by_id.setdefault(row["request_id"], []).append(row)
    assert {k: len(v) for k, v in rows_by_id.items()} == {"ten": 10, "one": 1, "failed": 2}
    assert [r["driver_id"] for r in rows_by_id["ten"]] == list(range(10))
    assert rows_by_id["one"] == [{
        "log_time": DAY1, "request_id": "one", "model": "m", "version": 1, "variant": "stable", "driver_id": 7,
        "city": "rome", "conv_rate": None, "conv_rate__status": "PRESENT", "conv_rate__event_timestamp": DAY1,
        "prediction": 0.5, "status": "ok", "latency_ms": 1.5}]
    assert [(r["city"], r["prediction"], r["status"]) for r in rows_by_id["failed"]] == [("oslo", None, "model_error")] * 2


def test_a_request_whose_rows_do_not_fit_is_dropped_alone_and_counted(tmp_path):
    drops = []
    writer = ServingLogWriter(tmp_path, flush_seconds=60, on_dropped=lambda name, n, reason: drops.append((n, reason)))
    for i in range(5):
        writer.write_entry("m", entry(f"r{i}", [i, i], ["not a number", 1.0] if i == 2 else [0.5, 1.0]))
    writer.write_entry("m", entry("unreadable", [1], [0.5], fields=[3]))  # entity rows that are not rows
    writer.close()
    assert sorted(drops) == [(1, UNWRITABLE), (2, UNWRITABLE)] and writer.dropped == 3
    table = read(tmp_path, "m")
    assert sorted(table.column("request_id").to_pylist()) == ["r0", "r0", "r1", "r1", "r3", "r3", "r4", "r4"]
    assert writer.written == 8


def test_entries_with_no_common_schema_land_in_separate_files_and_like_ones_together(tmp_path):
    writer = ServingLogWriter(tmp_path, flush_seconds=60)
    for i in range(3):  # version 2 logs conv_rate as a string: no common type with float
        writer.write_entry("m", entry(f"a{i}", [i], [0.5], version=1))
        writer.write_entry("m", entry(f"b{i}", [i], ["high"], version=2, dtype=String))
    writer.close()
    assert writer.written == 6
    files = list(tmp_path.rglob("*.parquet"))
    types = sorted(str(pq.read_table(f).schema.field("conv_rate").type) for f in files)
    assert types == ["float", "string"]
    assert sorted(pq.read_table(f).num_rows for f in files) == [3, 3]


def test_many_requests_are_written_in_one_file_only_when_a_flush_is_due(tmp_path):
    writer = ServingLogWriter(tmp_path, flush_seconds=60)
    for i in range(5 * SLICE_REQUESTS):  # several slices turned into Arrow before the flush
        writer.write_entry("m", entry(f"r{i}", [i, i + 1], [0.5, 0.25]))
    time.sleep(2 * SLICE_SECONDS)
    assert not list(tmp_path.rglob("*.parquet"))
    assert writer.flush(10)
    files = list(tmp_path.rglob("*.parquet"))
    assert len(files) == 1 and pq.read_table(files[0]).num_rows == 10 * SLICE_REQUESTS
    assert read(tmp_path, "m").column("request_id").to_pylist()[:4] == ["r0", "r0", "r1", "r1"]
    writer.close()


def test_entries_count_against_the_queue_when_queued(tmp_path):
    writer = ServingLogWriter(tmp_path, queue_rows=4, flush_seconds=60)
    assert writer.write_entry("m", entry("a", [1, 2, 3], [0.5] * 3))
    assert writer.write("m", rows(us(DAY1), 1), TYPES)
    assert not writer.write_entry("m", entry("b", [1], [0.5]))
    writer.close()
    assert writer.dropped == 1 and writer.written == 4


def test_an_unwritable_folder_drops_and_counts_and_the_writer_goes_on(tmp_path):
    blocked = tmp_path / "root"
    blocked.write_text("a file where the folder should be")
    writer = ServingLogWriter(blocked, flush_seconds=60)
    writer.write("m", rows(us(DAY1), 3), TYPES)
    writer.flush(10)
    assert writer.dropped == 3 and writer.written == 0
    blocked.unlink()
    writer.write("m", rows(us(DAY1), 2), TYPES)
    writer.close()
    assert writer.written == 2 and read(blocked, "m").num_rows == 2


def test_concurrent_writers_lose_nothing_they_do_not_count(tmp_path):
    writer = ServingLogWriter(tmp_path, queue_rows=200, flush_rows=50, flush_seconds=0.05)
    sent = []

    def send(thread: int) -> None:
        for i in range(300):
            writer.write("m", rows(us(DAY1) + i, 1, driver=thread), TYPES)
        sent.append(300)

    threads = [threading.Thread(target=send, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    writer.close()
    assert writer.written + writer.dropped == sum(sent) == 1200
    assert read(tmp_path, "m").num_rows == writer.written


KILLED_WRITER = """
import sys
import pyarrow as pa
from featurestore.serving_log import ServingLogWriter
root = sys.argv[1]
writer = ServingLogWriter(root, flush_rows=2000, flush_seconds=0.01)
big = {"log_time": list(range(1714521600000000, 1714521600000000 + 2000)), "request_id": ["x" * 50] * 2000,
       "payload": [list(range(50))] * 2000}
print("ready", flush=True)
while True:
    writer.write("m", big)
"""


def test_a_writer_killed_mid_write_leaves_only_whole_files(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, str(tmp_path)], stdout=subprocess.PIPE)
    assert proc.stdout.readline() == b"ready\n"
    folder = tmp_path / FOLDER / "m" / "date=2024-05-01"
    deadline = time.monotonic() + 20  # kill it when a file is being written, if that is seen in time
    while time.monotonic() < deadline and not (len(list(folder.glob("*.parquet"))) >= 3 and list(folder.glob(".*"))):
        pass
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    files = list(folder.glob("*.parquet"))
    assert len(files) >= 3
    sizes = [pq.read_table(f).num_rows for f in files]  # every file reads, with whole batches
    assert all(n > 0 and n % 2000 == 0 for n in sizes)
    assert read(tmp_path, "m").num_rows == sum(sizes)  # a torn temporary file is never read
