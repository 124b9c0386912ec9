"""The serving log written by a process of its own (``ServingLogProcess``), on a real
folder and a real child process: the same files and counts as the in-process writer,
the bound on rows it holds, a process that dies (its rows counted, a new one started),
rows that cannot be sent, and a worker that dies (its process still writes what it has)."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from featurestore.serving_log import QUEUE_FULL, UNWRITABLE, ServingLogWriter, read_log
from featurestore.child_process import NICENESS
from featurestore.serving_log.layout import FOLDER, log_folder
from featurestore.serving_log.process import PIECE, ServingLogProcess
from featurestore.types import String

from .test_writer import DAY1, TYPES, entry, rows, us


def log_processes() -> list:
    return [p for p in multiprocessing.active_children() if p.name == "featurestore-serving-log-process"]


def wait_for(check, what: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def entries(writer, count: int, name: str = "m", first: int = 0) -> None:
    for i in range(first, first + count):
        assert writer.write_entry(name, entry(f"r{i}", [i, i + 1], [0.5, 0.25]))


def written_files(root: Path) -> list[tuple[str, str, int]]:
    """(log name, date folder, rows) of every file."""
    return sorted((f.parent.parent.name, f.parent.name, pq.read_table(f).num_rows)
                  for f in root.rglob("*.parquet"))


def test_the_process_writes_the_files_and_counts_the_in_process_writer_does(tmp_path):
    """Mixed shapes, a request whose rows do not fit (dropped alone), two schemas with no
    common type (separate files), rows over two dates, and a table: file for file."""
    counts = {}
    for kind, make in (("thread", ServingLogWriter), ("process", ServingLogProcess)):
        seen: Counter = Counter()  # rows per log (and reason): the process reports them per message, not per file
        writer = make(tmp_path / kind, flush_seconds=60, on_written=lambda name, n: seen.update({name: n}),
                      on_dropped=lambda name, n, reason: seen.update({(name, reason): n}))
        writer.write_entry("m", entry("ten", list(range(10)), [0.25] * 10, fields={"city": ["paris"] * 10}))
        writer.write_entry("m", entry("bad", [1, 2], ["not a number", 1.0]))
        writer.write_entry("m", entry("one", [7], [None], fields=[{"driver_id": 7, "city": "rome"}]))
        writer.write_entry("other", entry("str", [3], ["high"], version=2, dtype=String))
        writer.write_entry("other", entry("float", [4], [0.5]))
        writer.write("m", rows(us(DAY1), 3), TYPES)
        assert writer.flush(30)
        counts[kind] = (writer.written, writer.dropped, seen, written_files(tmp_path / kind))
        writer.close()
    assert counts["process"] == counts["thread"]
    written, dropped, seen, files = counts["process"]
    assert (written, dropped) == (16, 2) and seen == {"m": 14, "other": 2, ("m", UNWRITABLE): 2}
    assert len(files) == 4 and sorted(read_log(log_folder(tmp_path / "process", "m")).column("request_id")
                                      .to_pylist())[:2] == ["one", "r0"]


def test_files_are_named_after_the_worker_and_written_by_a_lower_priority_process(tmp_path):
    writer = ServingLogProcess(tmp_path, flush_seconds=60)
    entries(writer, 3)
    assert writer.flush(30)
    (process,) = log_processes()
    assert process.pid != os.getpid()
    stat = Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()
    nice, policy = int(stat[16]), int(stat[38])
    if hasattr(os, "SCHED_IDLE"):  # Linux: a waking worker takes the core from it at once
        assert policy == os.SCHED_IDLE
    else:
        assert nice >= min(19, os.nice(0) + NICENESS)
    (file,) = tmp_path.rglob("*.parquet")
    assert file.name.split("-")[1] == str(os.getpid())
    writer.close()
    assert not log_processes()


def policies(pid: int) -> set[int]:
    """The scheduling policies of the threads of process ``pid``."""
    return {os.sched_getscheduler(int(task.name)) for task in Path(f"/proc/{pid}/task").iterdir()}


@pytest.mark.skipif(not hasattr(os, "SCHED_IDLE"), reason="SCHED_IDLE is Linux's")
def test_the_process_runs_at_the_workers_priority_while_a_flush_or_close_waits_for_it(tmp_path):
    """Behind the requests, on cores other processes keep busy, the process might not write
    before a flush or close gives up: while one waits it runs as the requests do, and after
    a flush it goes back behind them. A stopped process stands for a starved one."""
    writer = ServingLogProcess(tmp_path, flush_seconds=60)
    entries(writer, 3)
    assert writer.flush(30)
    (process,) = log_processes()
    assert policies(process.pid) == {os.SCHED_IDLE}
    for first, finish in ((3, writer.flush), (6, writer.close)):
        entries(writer, 3, first=first)
        os.kill(process.pid, signal.SIGSTOP)
        try:
            waiting = threading.Thread(target=finish, args=(60,))
            waiting.start()
            wait_for(lambda: policies(process.pid) == {os.SCHED_OTHER}, "the process at the worker's priority")
        finally:
            os.kill(process.pid, signal.SIGCONT)
        waiting.join()
        assert writer.written == 2 * (first + 3)  # two rows an entry
        if finish == writer.flush:
            assert policies(process.pid) == {os.SCHED_IDLE}
    assert not log_processes()


def test_close_writes_everything_queued_before_it_returns_and_later_rows_are_dropped(tmp_path):
    writer = ServingLogProcess(tmp_path, flush_seconds=60)
    entries(writer, 500)  # several pieces
    writer.close()
    assert writer.written == 1000 and read_log(log_folder(tmp_path, "m")).num_rows == 1000
    assert not writer.write_entry("m", entry("late", [1], [0.5]))
    assert writer.dropped == 1


def test_rows_held_by_the_process_count_against_the_queue_until_written(tmp_path):
    drops = []
    writer = ServingLogProcess(tmp_path, queue_rows=4, flush_seconds=60,
                               on_dropped=lambda name, n, reason: drops.append((n, reason)))
    assert writer.write_entry("m", entry("a", [1, 2, 3], [0.5] * 3))
    time.sleep(0.2)  # handed to the process, not yet written: still counted
    assert writer.write("m", rows(us(DAY1), 1), TYPES)
    assert not writer.write_entry("m", entry("b", [1], [0.5]))
    assert drops == [(1, QUEUE_FULL)]
    assert writer.flush(30)
    assert writer.write_entry("m", entry("c", [1], [0.5]))  # written: room again
    writer.close()
    assert (writer.written, writer.dropped) == (5, 1)


def test_rows_of_a_process_that_died_are_counted_as_dropped_and_a_new_process_writes_the_next(tmp_path, caplog):
    counted = []
    writer = ServingLogProcess(tmp_path, flush_seconds=60,
                               on_dropped=lambda name, n, reason: counted.append((name, n, reason)))
    entries(writer, 5)
    wait_for(lambda: log_processes() and writer.held, "the rows handed to the process")
    (first,) = log_processes()
    os.kill(first.pid, signal.SIGKILL)
    first.join(10)
    entries(writer, 3, first=5)
    assert writer.flush(30)
    assert counted == [("m", 10, UNWRITABLE)] and writer.dropped == 10
    assert writer.written == 6 and read_log(log_folder(tmp_path, "m")).num_rows == 6
    assert [p.pid for p in log_processes()] != [first.pid]
    assert "its process failed" in caplog.text and "the 10 row(s) it held are counted as dropped" in caplog.text
    writer.close()


def test_a_request_that_cannot_be_sent_is_dropped_alone_and_counted(tmp_path):
    writer = ServingLogProcess(tmp_path, flush_seconds=60)
    entries(writer, 2)
    writer.write_entry("m", entry("unpicklable", [1], [0.5], fields={"city": [lambda: "paris"]}))
    entries(writer, 2, first=2)
    writer.close()
    assert (writer.written, writer.dropped) == (8, 1)
    assert sorted(set(read_log(log_folder(tmp_path, "m")).column("request_id").to_pylist())) == ["r0", "r1", "r2", "r3"]


def test_a_writer_that_never_logged_starts_no_process(tmp_path):
    writer = ServingLogProcess(tmp_path)
    assert writer.flush(1)
    writer.close()
    assert not log_processes() and not list(tmp_path.iterdir())


KILLED_WORKER = """
import sys, time
from featurestore.online.read import OnlineResponse
from featurestore.serving_log import LogEntry
from featurestore.serving_log.process import PIECE, ServingLogProcess
from featurestore.types import String
from featurestore.types import Float32, Int64

if __name__ == "__main__":
    writer = ServingLogProcess(sys.argv[1], flush_seconds=3600)
    for i in range(200):
        response = OnlineResponse(["driver_id", "conv_rate"], [[i], [0.5]], [["PRESENT"], ["PRESENT"]],
                                  [[0], [0]], [Int64, Float32])
        writer.write_entry("m", LogEntry(response, 1, log_time_us=1714521600000000, request_id=f"r{i}"))
    while writer.held < 200:  # all handed over
        time.sleep(0.01)
    print("handed over", flush=True)
    time.sleep(3600)
"""


def test_a_worker_that_dies_loses_no_row_it_handed_to_its_process(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", KILLED_WORKER, str(tmp_path)], stdout=subprocess.PIPE)
    try:
        assert proc.stdout.readline() == b"handed over\n"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        folder = tmp_path / FOLDER / "m"
        wait_for(lambda: folder.is_dir() and read_log(folder).num_rows == 200, "the orphaned process's file")
        (file,) = folder.rglob("*.parquet")
        assert file.name.split("-")[1] == str(proc.pid)
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.mark.parametrize("pieces", [1, 3])
def test_rows_reach_the_files_in_the_order_they_were_logged(tmp_path, pieces):
    writer = ServingLogProcess(tmp_path, flush_seconds=60)
    entries(writer, pieces * PIECE - 1)
    writer.close()
    ids = read_log(log_folder(tmp_path, "m")).column("request_id").to_pylist()
    assert ids == [f"r{i}" for i in range(pieces * PIECE - 1) for _ in (0, 1)]


@pytest.mark.parametrize("make", [ServingLogWriter, ServingLogProcess])
def test_a_request_whose_columns_are_not_its_row_count_is_dropped_alone_and_the_rest_stay_in_line(tmp_path, make):
    """The worker gathers entries into flat columns as they are logged: a request with a
    column of another length (here its predictions) must leave none of its values behind."""
    drops = []
    writer = make(tmp_path, flush_seconds=60, on_dropped=lambda name, n, reason: drops.append((n, reason)))
    writer.write_entry("m", entry("a", [1], [0.5], predictions=[0.1]))
    writer.write_entry("m", entry("bad", [2, 3], [0.25, 0.75], predictions=[0.2]))
    writer.write_entry("m", entry("c", [4, 5], [1.0, 2.0], predictions=[0.4, 0.5]))
    writer.close()
    assert drops == [(2, UNWRITABLE)] and (writer.written, writer.dropped) == (3, 2)
    table = read_log(log_folder(tmp_path, "m"))
    assert table.select(["request_id", "driver_id", "conv_rate", "prediction"]).to_pylist() == [
        {"request_id": "a", "driver_id": 1, "conv_rate": 0.5, "prediction": 0.1},
        {"request_id": "c", "driver_id": 4, "conv_rate": 1.0, "prediction": 0.4},
        {"request_id": "c", "driver_id": 5, "conv_rate": 2.0, "prediction": 0.5}]


def test_an_entry_is_taken_as_it_was_when_logged(tmp_path):
    """``write_entry`` copies the values out (the request's objects are freed at once):
    changing them afterwards changes nothing logged."""
    writer = ServingLogProcess(tmp_path, flush_seconds=60)
    logged = entry("a", [1, 2], [0.5, 0.25], fields={"city": ["paris", "rome"]})
    assert writer.write_entry("m", logged)
    logged.response.values[1][0] = 9.0
    logged.fields["city"].append("oslo")
    logged.predictions.clear()
    writer.close()
    table = read_log(log_folder(tmp_path, "m"))
    assert table.select(["driver_id", "city", "conv_rate", "prediction"]).to_pylist() == [
        {"driver_id": 1, "city": "paris", "conv_rate": 0.5, "prediction": 0.5},
        {"driver_id": 2, "city": "rome", "conv_rate": 0.25, "prediction": 0.5}]
    assert (writer.written, writer.dropped) == (2, 0)
