"""Training sets over Arrow Flight: our remote client and Feast's, against the local call.

    .venv/bin/python bench/remote.py                      # 1M entity rows over the 10M-row table
    .venv/bin/python bench/remote.py --table 1m --rows 100000 --runs 3

One run, three paths over the same repo (``bench/pit_data.py``'s seeded data, made once
under bench/data) and the same entity set, alternating so a shift in the machine's load
hits all alike (after one untimed warm-up call of each):

- ``local``: ``FeatureStore(repo).get_historical_features(entities, refs).to_arrow()`` in
  this process;
- ``ours``: ``FeatureStore.remote(url).get_historical_features(...).to_arrow()`` against
  ``featurestore flight`` in its own process on loopback (the entity set goes up, the
  training set streams back);
- ``feast``: Feast 0.67's ``get_historical_features(...).to_arrow()`` with
  ``offline_store: {type: remote}`` against the same server, in the Feast SDK's virtualenv
  (``.venv-feast``, as the tests build it; skipped with a note when it cannot be built). Its
  entity set is a pandas frame, as Feast takes it; Feast's own import and apply are not timed.

Prints one JSON object: per path the median seconds and rows/s, and each remote path's
throughput as a share of the local one (the target is at least 0.7).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pit_data import DATA, DEFINITIONS, entities, features  # noqa: E402

REFS = ["driver_hourly_stats:conv_rate", "driver_hourly_stats:acc_rate", "driver_hourly_stats:avg_daily_trips"]

FEAST_CLIENT = '''
import json, sys, time
from datetime import timedelta
from pathlib import Path
import pandas as pd
from feast import Entity, FeatureStore, FeatureView, Field, FileSource
from feast.types import Float32, Int64
folder, port, source, entity_path, runs = Path(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
folder.mkdir(parents=True, exist_ok=True)
(folder / "feature_store.yaml").write_text(f"""
project: bench_remote
registry: {folder / 'registry.db'}
provider: local
offline_store: {{type: remote, host: 127.0.0.1, port: {port}}}
online_store: {{type: sqlite, path: {folder / 'online.db'}}}
entity_key_serialization_version: 3
""")
driver = Entity(name="driver", join_keys=["driver_id"])
src = FileSource(name="driver_hourly_stats_source", path=source, timestamp_field="event_timestamp",
                 created_timestamp_column="created")
view = FeatureView(name="driver_hourly_stats", entities=[driver], ttl=timedelta(hours=2), source=src,
                   schema=[Field(name="conv_rate", dtype=Float32), Field(name="acc_rate", dtype=Float32),
                           Field(name="avg_daily_trips", dtype=Int64)])
store = FeatureStore(repo_path=str(folder))
store.apply([driver, src, view])
entity_df = pd.read_parquet(entity_path)
refs = ["driver_hourly_stats:conv_rate", "driver_hourly_stats:acc_rate", "driver_hourly_stats:avg_daily_trips"]
for _ in range(runs + 1):  # the first run warms up, untimed by the parent
    sys.stdin.readline()  # the parent says when
    began = time.perf_counter()
    rows = store.get_historical_features(entity_df=entity_df, features=refs).to_arrow().num_rows
    print(json.dumps({"seconds": time.perf_counter() - began, "rows": rows}), flush=True)
'''


def make_repo(table: str, threads: int) -> Path:
    repo = DATA / f"remote_repo_{table}"
    shutil.rmtree(repo, ignore_errors=True)
    repo.mkdir(parents=True)
    (repo / "featurestore.yaml").write_text(
        f"project: bench_remote\nregistry: registry.db\noffline_store:\n  path: offline\n  threads: {threads}\n"
        "flight:\n  slots: 2\n")
    (repo / "features.py").write_text(DEFINITIONS.format(path=features(table), partition=None)
                                      .replace('source=FileSource(', 'source=FileSource(name="driver_hourly_stats_source", '))
    from featurestore import FeatureStore

    with FeatureStore(repo_path=repo) as store:
        store.apply()
    return repo


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(repo: Path, port: int) -> subprocess.Popen:
    server = subprocess.Popen([sys.executable, "-c", "from featurestore.cli.main import main; main()", "--repo",
                               str(repo), "flight", "--port", str(port)], stderr=subprocess.PIPE, text=True)
    line = server.stderr.readline()  # "Serving project ... over Arrow Flight on ..."
    if "Arrow Flight" not in line:
        server.kill()
        raise SystemExit(f"the Flight server did not start: {line}{server.stderr.read()}")
    return server


def feast_client(port: int, source: str, entity_path: str, runs: int) -> subprocess.Popen | None:
    python = Path(__file__).resolve().parents[1] / ".venv-feast" / "bin" / "python"
    if not python.exists():
        try:  # build it as the tests do
            from tests.serving.feast_env import feast_python

            python = feast_python()
        except BaseException as exc:  # pytest.skip / fail outside pytest
            print(f"no Feast SDK ({exc}); skipping the feast path", file=sys.stderr)
            return None
    folder = tempfile.mkdtemp(prefix="bench-remote-feast-")
    return subprocess.Popen([str(python), "-c", FEAST_CLIENT, folder, str(port), source, entity_path, str(runs)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", default="10m", help="feature table of bench/pit_data.py (1m, 10m, 30m)")
    parser.add_argument("--rows", type=int, default=1_000_000, help="entity rows")
    parser.add_argument("--runs", type=int, default=3, help="runs per path (median reported)")
    parser.add_argument("--threads", type=int, default=2, help="DuckDB threads, server and local alike")
    parser.add_argument("--no-feast", action="store_true", help="skip Feast's client")
    args = parser.parse_args()

    import pyarrow.parquet as pq

    from featurestore import FeatureStore

    entity_path = entities(args.table, args.rows)
    repo = make_repo(args.table, args.threads)
    entity_table = pq.read_table(entity_path)
    port = free_port()
    server = start_server(repo, port)
    feast = None if args.no_feast else feast_client(port, features(args.table), entity_path, args.runs)
    times: dict[str, list[float]] = {"local": [], "ours": []}
    rows: dict[str, int] = {}
    try:
        local = FeatureStore(repo_path=repo)
        remote = FeatureStore.remote(f"grpc://127.0.0.1:{port}")
        for run in range(args.runs + 1):  # run 0 warms every path up (files cached, plans made) untimed
            for name, store in (("local", local), ("ours", remote)):
                began = time.perf_counter()
                rows[name] = store.get_historical_features(entity_table, REFS).to_arrow().num_rows
                if run:
                    times[name].append(time.perf_counter() - began)
            if feast is not None:
                feast.stdin.write("go\n")
                feast.stdin.flush()
                answer = json.loads(feast.stdout.readline())
                if run:
                    times.setdefault("feast", []).append(answer["seconds"])
                rows["feast"] = answer["rows"]
        local.close()
        remote.close()
    finally:
        if feast is not None:
            feast.kill()
        server.terminate()
        server.wait(timeout=30)
    report = {}
    for name, seconds in times.items():
        median = statistics.median(seconds)
        report[name] = {"median_s": round(median, 3), "rows": rows[name], "rows_per_s": round(rows[name] / median)}
    for name in report:
        if name != "local":
            report[name]["throughput_vs_local"] = round(report[name]["rows_per_s"] / report["local"]["rows_per_s"], 3)
    print(json.dumps({"table": args.table, "entity_rows": args.rows, "runs": args.runs, "threads": args.threads,
                      "cpus": os.cpu_count(), "paths": report}, indent=2))


if __name__ == "__main__":
    main()
