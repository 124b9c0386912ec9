"""Four processes registering versions of one model at once, on one registry file."""

from __future__ import annotations

import subprocess
import sys

import pyarrow as pa

from featurestore import FeatureStore

# Each process waits for the go file, then registers three versions of `m` (a function
# model from the repo: the python flavor saves its import path) and prints the numbers.
SCRIPT = """
import sys, time
from pathlib import Path
repo, go = Path(sys.argv[1]), Path(sys.argv[2])
sys.path.insert(0, str(repo))
from featurestore import FeatureStore
import scorer
with FeatureStore(repo_path=repo) as store:
    print("ready", flush=True)
    while not go.exists():
        time.sleep(0.005)
    for _ in range(3):
        v = store.models.register("m", scorer.predict, flavor="python", features="driver_activity_v1")
        print(v.version, flush=True)
"""


def test_four_processes_get_distinct_consecutive_versions(store, repo, tmp_path):
    (repo / "scorer.py").write_text("def predict(features):\n    return [0.5] * features.num_rows\n")
    go = tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, "-c", SCRIPT, str(repo), str(go)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(4)]
    for proc in procs:  # every process has its store open before any registers
        assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
    go.touch()
    numbers = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        numbers += [int(line) for line in out.split()]
    assert sorted(numbers) == list(range(1, 13))
    with FeatureStore(repo_path=repo) as fresh:
        versions = fresh.models.versions("m")
        assert [v.version for v in versions] == list(range(1, 13))
        # Same function, same files: every version shares one content-addressed artifact.
        assert len({v.artifact for v in versions}) == 1
        row = pa.table({"conv_rate": pa.array([0.1], pa.float32()), "acc_rate": pa.array([0.2], pa.float32()),
                        "avg_daily_trips": [3]})
        assert fresh.models.load("m/12").predict(row) == [0.5]
