"""The fenced code blocks of README.md and docs/*.md, and how each language is checked.

A block runs as the language its fence names (see ``tests/docs/test_code_blocks.py``);
``<!-- not-runnable: REASON -->`` on the line right above a fence marks a block that
cannot run, and the reason is required.
"""

from __future__ import annotations

import json
import re
import sqlite3
import textwrap
from dataclasses import dataclass
from pathlib import Path

import yaml

__all__ = ["LANGUAGES", "ROOT", "Block", "blocks", "check_data", "pages", "shell_script"]

ROOT = Path(__file__).resolve().parents[2]

# What each fence language means to the runner.
LANGUAGES = {
    "python": "run",     # executed in order, one namespace per page, in the page's folder
    "bash": "run",       # run by bash in the page's folder (curl against a real server)
    "yaml": "data",      # parsed; featurestore.yaml fragments loaded by load_config
    "json": "data",      # parsed
    "sql": "data",       # run by SQLite on an empty database
    "promql": "metrics",  # every featurestore_* metric it names is served by /metrics
    "text": "text",      # output, diagrams, command synopses: nothing to run
}

_FENCE = re.compile(r"^(?P<indent> *)```(?P<lang>[^\n`]*)\n(?P<body>.*?)^(?P=indent)```[ \t]*$", re.S | re.M)
_MARK = re.compile(r"<!--\s*not-runnable:(?P<reason>.*?)-->")


@dataclass(frozen=True)
class Block:
    page: Path
    line: int
    lang: str
    text: str
    not_runnable: str | None  # the reason, when the block is marked

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT) if self.page.is_relative_to(ROOT) else self.page}:{self.line}"


def pages() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def blocks(page: Path) -> list[Block]:
    text = page.read_text()
    found = []
    for match in _FENCE.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        above = text[:match.start()].rstrip("\n").rpartition("\n")[2]
        mark = _MARK.search(above)
        reason = mark.group("reason").strip() if mark else None
        found.append(Block(page, line, match.group("lang").strip(), textwrap.dedent(match.group("body")),
                           reason))
    return found


def check_data(block: Block, repo: Path) -> None:
    """Parse a data block; a featurestore.yaml fragment must load on top of ``repo``'s."""
    if block.lang == "json":
        json.loads(block.text)
    elif block.lang == "sql":
        with sqlite3.connect(":memory:") as db:
            db.executescript(block.text)
    elif block.lang == "yaml":
        for document in yaml.safe_load_all(block.text):
            if isinstance(document, dict) and document.keys() <= _CONFIG_KEYS:
                _load_into(repo, document)


_CONFIG_KEYS = {"project", "registry", "offline_store", "online_store", "artifacts", "serving", "limits",
                "scheduler", "streaming", "flight", "monitoring", "serving_log"}


def _load_into(repo: Path, fragment: dict) -> None:
    from featurestore.config import load_config

    path = repo / "featurestore.yaml"
    original = path.read_text()
    settings = yaml.safe_load(original)
    try:
        path.write_text(yaml.safe_dump({**settings, **fragment}))
        load_config(repo, env={})
    finally:
        path.write_text(original)


# A bash block runs after this prelude: ``curl`` fails on an HTTP status other than the one
# the line claims (``# answers 404``; 2xx otherwise) and still prints the body.
_PRELUDE = r"""
set -eo pipefail
curl() {
  local body status
  body=$(mktemp)
  status=$(command curl -sS -o "$body" -w '%{http_code}' "$@") || { rm -f "$body"; return 1; }
  cat "$body"; echo; rm -f "$body"
  case "${EXPECT:-2xx}" in
    2xx) [[ $status == 2* ]] ;;
    *) [[ $status == "$EXPECT" ]] ;;
  esac || { echo "HTTP $status, expected ${EXPECT:-2xx}: curl $*" >&2; return 1; }
}
"""
_ANSWERS = re.compile(r"^(?P<indent>\s*)curl (?P<args>.*?)\s*# answers (?P<status>\d{3})\s*$", re.M)


def shell_script(block: Block, address: str | None) -> str:
    """The block as a bash script: documented curl statuses checked, the server's address
    in place of localhost:6566, and the folder it ends in written to $DOCS_CWD."""
    text = _ANSWERS.sub(r"\g<indent>EXPECT=\g<status> curl \g<args>", block.text)
    if address:
        text = text.replace("localhost:6566", address)
    return f'{_PRELUDE}\n{text}\npwd > "$DOCS_CWD"\n'
