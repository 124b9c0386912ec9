"""The import graph: the layers, no cycles, and what importing a package loads.

The contracts live in pyproject.toml (``[tool.importlinter]``, explained in
docs/architecture.md); ``lint-imports`` checks them from the repo root, here as in CI.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("registry", "featurestore", "monitoring", "serving")


def _lint_imports() -> str:
    beside = Path(sys.executable).with_name("lint-imports")
    found = str(beside) if beside.exists() else shutil.which("lint-imports")
    assert found, "lint-imports is missing: install the dev extra (pip install -e '.[dev]')"
    return found


def test_the_import_contracts_hold():
    result = subprocess.run([_lint_imports(), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_no_module_imports_itself_through_others():
    graph = grimp.build_graph(*PACKAGES)
    modules = set(graph.modules)
    cycles = []
    for module in sorted(modules):
        for imported in graph.find_modules_directly_imported_by(module) & modules:
            chain = graph.find_shortest_chain(importer=imported, imported=module)
            if chain is not None and module < imported:  # each cycle once
                cycles.append((module, *chain))
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def _loaded_by(statement: str, *candidates: str) -> set[str]:
    code = f"import sys; {statement}; print(' '.join(m for m in {candidates!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return set(out.split())


def test_the_data_plane_loads_no_backend_it_does_not_use():
    # A SQLite deployment, a notebook or a CLI command pays for neither Redis, APScheduler
    # nor the web framework: those load when a backend or command needs them.
    assert _loaded_by("import featurestore, featurestore.jobs", "redis", "apscheduler", "fastapi") == set()
    assert _loaded_by("import registry", "featurestore", "duckdb", "redis") == set()
    # The PostgreSQL driver loads only when a postgresql:// registry is opened.
    assert _loaded_by("import featurestore, registry, tempfile; "
                      "registry.Registry.open(tempfile.mkdtemp() + '/r.db').close()", "psycopg") == set()
