"""tests/memory_guard.py: a process whose memory runs past the limit is interrupted, saying
which test it was running and where every thread was, before the kernel kills it."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from . import memory_guard

GUARD = Path(__file__).resolve().parent / "memory_guard.py"


def test_resident_memory_is_read_from_proc():
    if not Path("/proc/self/statm").exists():
        pytest.skip("no /proc here: the guard does not watch")
    used = memory_guard.resident_bytes()
    held = b"x" * 64 * 2**20  # touched pages: resident
    assert used is not None and memory_guard.resident_bytes() >= used + 60 * 2**20
    del held


def test_a_process_past_the_limit_is_interrupted_naming_its_test_and_stacks():
    if memory_guard.resident_bytes() is None:
        pytest.skip("no /proc here: the guard does not watch")
    script = textwrap.dedent(f"""
        import importlib.util, sys
        spec = importlib.util.spec_from_file_location("memory_guard", {str(GUARD)!r})
        guard = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(guard)
        guard.running("tests/test_runaway.py::test_grows")
        guard.start(limit=guard.resident_bytes() + 200 * 2**20, period=0.05)
        hog = []
        def grow_forever():
            while True:
                hog.append(b"x" * 2**20)
                assert len(hog) < 2000, "the guard did not stop it"
        try:
            grow_forever()
        except KeyboardInterrupt:
            print("interrupted holding", len(hog), "MiB")
            print(guard.report())
            sys.exit(3)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 3, done.stderr[-2000:]
    held = int(done.stdout.split()[2])
    assert 200 <= held < 1000, done.stdout  # stopped soon after it passed the limit
    assert "past the suite's limit of" in done.stdout
    assert "in tests/test_runaway.py::test_grows" in done.stdout
    assert "in grow_forever" in done.stdout  # the main thread's stack, where it grew
