"""A stopping server puts its serving log's process and the model process below it (which
scores the shadow candidates) back at the worker's priority (every thread of each): with no request left to run behind, a
SCHED_IDLE process on busy cores might not write its rows before the worker gives up."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from featurestore.child_process import run_as_requests

pytestmark = pytest.mark.skipif(not hasattr(os, "SCHED_IDLE") or not Path("/proc").is_dir(),
                                reason="SCHED_IDLE and /proc are Linux's")

# A helper process as the serving log's process is: behind the requests, with a thread and a child
# process that inherits its policy.
HELPER = """
import subprocess, sys, threading, time
from featurestore.child_process import run_behind_requests
assert run_behind_requests() == "idle"
threading.Thread(target=time.sleep, args=(60,), daemon=True).start()
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
print(child.pid, flush=True)
time.sleep(60)
"""


def policies(pid: int) -> set[int]:
    return {os.sched_getscheduler(int(task.name)) for task in Path(f"/proc/{pid}/task").iterdir()}


def test_a_helper_behind_the_requests_and_its_children_are_put_back_at_their_priority():
    helper = subprocess.Popen([sys.executable, "-c", HELPER], stdout=subprocess.PIPE, text=True)
    try:
        child = int(helper.stdout.readline())  # its thread started before
        # (a thread a library started while the helper was imported may run as requests already)
        assert os.SCHED_IDLE in policies(helper.pid) and policies(child) == {os.SCHED_IDLE}
        run_as_requests(helper.pid)
        assert policies(helper.pid) == {os.SCHED_OTHER} and policies(child) == {os.SCHED_OTHER}
        run_as_requests(2 ** 22 + 7)  # no such process: nothing to do, no error
    finally:
        helper.kill()
        helper.wait()
