"""A core install (``pip install featurestore``, no extras) can import every module that
imports a library at its top: each such library is the standard library's, ours, or
brought by the core dependencies of pyproject.toml. The tests run with the dev extra,
which would hide a library only it installs (the scheduler once failed so on httpx).
Optional libraries (model flavors, scipy, psycopg, pyspark) are imported inside the
functions that need them, and are not checked here."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
OURS = ("featurestore", "registry", "serving", "monitoring")


def _name(requirement: str) -> str:
    return re.sub(r"[-_.]+", "-", Requirement(requirement).name).lower()


def core_distributions() -> set[str]:
    """The core dependencies and everything they require (extras and other platforms aside)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    todo = [r for r in project["dependencies"] if Requirement(r).marker is None or Requirement(r).marker.evaluate()]
    found: set[str] = set()
    while todo:
        name = _name(todo.pop())
        if name in found:
            continue
        found.add(name)
        for requirement in metadata.requires(name) or []:
            marker = Requirement(requirement).marker
            if marker is None or marker.evaluate({"extra": ""}):
                todo.append(requirement)
    return found


def top_level_imports(path: Path) -> set[str]:
    """The packages a module imports at its top (not under ``if``/``try``, where an import
    is guarded or only for type checkers)."""
    names = set()
    for node in ast.parse(path.read_text(), str(path)).body:
        if isinstance(node, ast.Import):
            names |= {alias.name.partition(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.partition(".")[0])
    return names


def unprovided_imports(modules: list[Path], provided: set[str]) -> dict[str, set[str]]:
    """module path -> the packages it imports at its top that nothing in ``provided`` brings."""
    by_package = metadata.packages_distributions()
    missing = {}
    for path in modules:
        outside = {name for name in top_level_imports(path)
                   if name not in sys.stdlib_module_names and name not in OURS and name != "__future__"
                   and not {_name(d) for d in by_package.get(name, [name])} & provided}
        if outside:
            missing[str(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)] = outside
    return missing


def test_every_module_imports_on_a_core_install():
    template = ROOT / "featurestore" / "scaffold" / "template"  # a user's repo, importing its own modules
    modules = [p for package in OURS for p in sorted((ROOT / package).rglob("*.py")) if not p.is_relative_to(template)]
    assert len(modules) > 100
    assert unprovided_imports(modules, core_distributions()) == {}


def test_an_import_of_an_extra_only_library_is_named(tmp_path):
    module = tmp_path / "flavor.py"
    module.write_text("import json\nimport scipy.stats\nfrom duckdb import connect\n"
                      "try:\n    import skops\nexcept ImportError:\n    skops = None\n")
    assert unprovided_imports([module], core_distributions()) == {str(module): {"scipy"}}
