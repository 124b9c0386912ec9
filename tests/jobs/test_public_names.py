"""The public names of featurestore.jobs are pinned; every module's __all__ resolves."""

import importlib

import featurestore.jobs

MODULES = ["backfill", "locks", "redis_locks", "runner", "schedule", "scheduler", "settings"]


def test_public_names_are_pinned():
    assert sorted(featurestore.jobs.__all__) == [
        "BackfillReport", "ChunkOutcome", "JobInterrupted", "JobSettings", "Lease", "LockBusyError",
        "RedisLocks", "RegistryLocks", "Schedule", "Scheduler", "backfill", "parse_duration",
    ]
    for name in MODULES:
        module = importlib.import_module(f"featurestore.jobs.{name}")
        for public in module.__all__:
            assert hasattr(module, public), (name, public)
    for module in ("registry.jobs", "monitoring.jobs", "serving.routes.jobs", "featurestore.cli.job_commands"):
        mod = importlib.import_module(module)
        assert all(hasattr(mod, n) for n in mod.__all__), module


def test_registry_stays_free_of_the_data_plane():
    import ast
    import pathlib

    import registry

    for path in pathlib.Path(registry.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                assert name.split(".")[0] not in ("featurestore", "duckdb", "redis"), (path.name, name)
