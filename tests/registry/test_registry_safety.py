"""A registry file is never silently replaced or refused: an empty (truncated) file is an
error, a new file appears whole even when several processes create it at once, and a file
this process cannot write still opens for reading, with a clear error on writes."""

from __future__ import annotations

import multiprocessing
import os
import shutil
import subprocess

import pytest

from registry import ObjectSpec, Registry, RegistryError

KINDS = ["entity"]


def seeded(path) -> None:
    with Registry.open(path) as reg:
        reg.apply("p", [ObjectSpec("entity", "driver", {"keys": ["driver_id"]})], KINDS)
        reg.set_state("p", "materialized_until:v", "2024-05-01T00:00:00+00:00")
        reg.jobs.acquire_lock("p", "materialize:v", "someone", 60, 1000.0)


def test_an_empty_registry_file_is_refused_not_taken_for_a_new_one(tmp_path):
    path = tmp_path / "registry.db"
    seeded(path)
    path.write_bytes(b"")  # truncated: a full disk, an interrupted copy
    with pytest.raises(RegistryError, match=r"empty \(0-byte\).*Restore it from a backup.*delete the file"):
        Registry.open(path)
    assert path.stat().st_size == 0  # left as it was, for whoever restores it


def test_a_new_registry_file_is_whole_from_the_start(tmp_path):
    path = tmp_path / "sub" / "registry.db"
    with Registry.open(path) as reg:
        assert reg.revision("p") == 0
        assert path.stat().st_size > 0  # the schema is in the file, not only in its WAL
    assert [p.name for p in path.parent.iterdir() if p.name.startswith(".")] == []  # no temporaries
    with Registry.open(path) as reg:  # and it opens again
        assert reg.revision("p") == 0


def _open_and_write(path, name, barrier) -> None:
    barrier.wait()
    with Registry.open(path) as reg:
        reg.put("p", ObjectSpec("entity", name, {}))


def test_processes_creating_one_registry_at_once_all_use_the_same_one(registry_url):
    path = registry_url
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(4)
    procs = [ctx.Process(target=_open_and_write, args=(path, f"e{i}", barrier)) for i in range(4)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(120)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    with Registry.open(path) as reg:
        assert sorted(o.name for o in reg.list("p")) == ["e0", "e1", "e2", "e3"]
        assert reg.revision("p") == 4


def read_only(folder):
    """Make ``folder`` and its files unwritable for this process (root included: the
    immutable attribute), like a read-only mount; returns the undo."""
    paths = [folder, *folder.iterdir()]
    if os.geteuid() == 0:
        if shutil.which("chattr") is None:
            pytest.skip("running as root without chattr: cannot make a file read-only")
        result = subprocess.run(["chattr", "+i", *map(str, paths)], capture_output=True, text=True)
        if result.returncode != 0:
            pytest.skip(f"chattr +i is not supported here: {result.stderr.strip()}")
        return lambda: subprocess.run(["chattr", "-i", *map(str, paths)], check=True)
    modes = {p: p.stat().st_mode for p in paths}
    for p in paths:
        p.chmod(modes[p] & ~0o222)
    return lambda: [p.chmod(m) for p, m in modes.items()]


@pytest.fixture
def read_only_registry(tmp_path):
    folder = tmp_path / "meta"
    folder.mkdir()
    path = folder / "registry.db"
    seeded(path)
    undo = read_only(folder)
    yield path
    undo()


def test_a_read_only_registry_opens_for_reads_and_refuses_writes_clearly(read_only_registry):
    with Registry.open(read_only_registry) as reg:
        assert reg.read_only
        assert [o.name for o in reg.list("p")] == ["driver"] and reg.revision("p") == 1
        assert reg.get_state("p", "materialized_until:v") == "2024-05-01T00:00:00+00:00"
        assert reg.jobs.list("p") == [] and reg.jobs.get_lock("p", "materialize:v", 1000.0).owner == "someone"
        writes = [
            lambda: reg.apply("p", [], KINDS),
            lambda: reg.put("p", ObjectSpec("entity", "rider", {})),
            lambda: reg.set_state("p", "k", 1),
            lambda: reg.jobs.acquire_lock("p", "x", "me", 60, 1000.0),
        ]
        for write in writes:
            with pytest.raises(RegistryError, match=r"open read-only \(this process cannot write.*reading works"):
                write()
        assert reg.revision("p") == 1
