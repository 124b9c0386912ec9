"""Every fenced code block in README.md and docs/*.md runs, or says why it cannot.

How a page runs: its blocks run in order, like a reader following along, in a fresh
folder that holds ``.venv`` (this install) and ``my_repo``, the example repo of
``featurestore init``, applied and materialized up to now. The reader starts inside
``my_repo``; a page that makes ``my_repo`` itself (``featurestore init my_repo``) starts
in the folder above, without it. By the fence's language:

- ``python``: executed where the reader is, that folder first on ``sys.path`` (as in a
  Python prompt started there); the page's python blocks share one namespace.
- ``bash``: run by bash (``set -eo pipefail``) where the reader is, with this install's
  commands on PATH; a ``cd`` moves the reader for the next blocks. ``localhost:6566`` is a
  real ``featurestore serve`` on ``my_repo`` (API key ``my-key``), started for the page;
  each ``curl`` must answer 2xx, or the status written at the end of its line
  (``# answers 404``).
- ``yaml``, ``json``, ``sql``: parsed (SQL by SQLite); a YAML block whose keys are
  ``featurestore.yaml`` keys must load on top of the example repo's settings.
- ``promql``: every ``featurestore_*`` metric it names is served by ``/metrics``.
- ``text``: output, diagrams, command synopses; nothing runs.

A block that cannot run (it installs software, runs until stopped, needs a service the
tests do not have) is marked on the line right above its fence, with the reason:

    <!-- not-runnable: runs until stopped; tests/streaming runs the worker -->

A block with no language, another language or an empty reason fails the test.
"""

from __future__ import annotations

import os
from datetime import datetime, timezone
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from featurestore import FeatureStore
from featurestore.scaffold import init_repo

from ..serving.served import Server
from .blocks import LANGUAGES, ROOT, Block, blocks, check_data, pages, shell_script

BIN = Path(sys.executable).parent
SERVED = "localhost:6566"


@pytest.fixture(scope="module")
def example_repo(tmp_path_factory) -> Path:
    repo = init_repo(tmp_path_factory.mktemp("docs") / "my_repo", project="my_repo")
    with FeatureStore(repo_path=repo) as store:
        store.apply()
        store.materialize_incremental(datetime.now(timezone.utc))
    return repo


class Reader:
    """One page's run: its folder, its python namespace, its shell's folder, its server."""

    def __init__(self, folder: Path, cwd: Path):
        self.folder = folder
        self.namespace: dict = {"__name__": "__docs__"}
        self.cwd = cwd
        self.server: Server | None = None
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("FEATURESTORE_") and k != "REDIS_URL"}
        self.env["PATH"] = f"{BIN}{os.pathsep}{self.env.get('PATH', '')}"

    def run(self, block: Block) -> None:
        if block.lang == "python":
            os.chdir(self.cwd)
            sys.path.insert(0, str(self.cwd))
            try:
                exec(compile(block.text, block.where, "exec"), self.namespace)
            finally:
                sys.path.remove(str(self.cwd))
        elif block.lang == "bash":
            self._bash(block)
        elif block.lang == "promql":
            self._served_metrics(block)
        elif LANGUAGES[block.lang] == "data":
            check_data(block, self.folder / "my_repo")

    def _address(self) -> str:
        if self.server is None:
            self.server = Server(self.folder / "my_repo", env={**self.env, "FEATURESTORE_API_KEYS": "my-key"})
        return f"127.0.0.1:{self.server.port}"

    def _bash(self, block: Block) -> None:
        address = self._address() if SERVED in block.text else None
        state = self.folder / ".docs_cwd"
        script = shell_script(block, address)
        done = subprocess.run(["bash", "-c", script], cwd=self.cwd, env={**self.env, "DOCS_CWD": str(state)},
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"{block.where}: exit {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        self.cwd = Path(state.read_text().strip())

    def _served_metrics(self, block: Block) -> None:
        self._address()
        served = set(re.findall(r"^# TYPE (\w+)", self.server.client.get("/metrics").text, re.M))
        named = set(re.findall(r"\bfeaturestore_\w+", block.text))
        unknown = {n for n in named if re.sub(r"_(bucket|count|sum|total|created)$", "", n) not in served
                   and n not in served}
        assert not unknown, f"{block.where}: /metrics serves no {sorted(unknown)}"

    def close(self) -> None:
        if self.server is not None:
            self.server.stop()
        self.namespace.clear()
        # The page's repo modules (train, driver_model) must not serve the next page's imports.
        for name, module in list(sys.modules.items()):
            if str(getattr(module, "__file__", None) or "").startswith(str(self.folder)):
                del sys.modules[name]


def _makes_repo(found: list[Block]) -> bool:
    return any(b.lang == "bash" and not b.not_runnable and "featurestore init my_repo" in b.text for b in found)


@pytest.mark.parametrize("page", pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_block_runs_or_says_why_not(page, example_repo, tmp_path, monkeypatch):
    found = blocks(page)
    for block in found:
        assert block.lang in LANGUAGES, (
            f"{block.where}: a fence needs a language ({', '.join(LANGUAGES)}), or mark the block "
            "`<!-- not-runnable: REASON -->` on the line above it")
        assert block.not_runnable != "", f"{block.where}: say why the block cannot run"
    (tmp_path / ".venv").symlink_to(sys.prefix)
    start = tmp_path
    if not _makes_repo(found):
        start = shutil.copytree(example_repo, tmp_path / "my_repo")
    monkeypatch.chdir(tmp_path)  # restored after the page, wherever its blocks went
    reader = Reader(tmp_path, start)
    try:
        for block in found:
            if block.not_runnable is None and LANGUAGES[block.lang] != "text":
                reader.run(block)
    finally:
        reader.close()


def test_a_marked_block_is_skipped_and_an_unmarked_one_is_not(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("<!-- not-runnable: runs until stopped -->\n```bash\nfeaturestore serve\n```\n\n"
                    "```python\nx = 1\n```\n")
    marked, plain = blocks(page)
    assert (marked.lang, marked.not_runnable, marked.line) == ("bash", "runs until stopped", 2)
    assert (plain.lang, plain.not_runnable, plain.text) == ("python", None, "x = 1\n")


def test_a_failing_block_fails_naming_its_place(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("text\n\n```bash\necho ok\nfalse\n```\n")
    (block,) = blocks(page)
    with pytest.raises(AssertionError, match=r"page.md:3: exit 1"):
        Reader(tmp_path, tmp_path).run(block)
