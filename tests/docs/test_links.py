"""Every relative link of README.md and docs/*.md reaches a file, and its ``#anchor`` a
heading of that page (anchors made as GitHub makes them from the heading's text)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from .blocks import ROOT, pages

_FENCED = re.compile(r"^ *```.*?^ *```[ \t]*$", re.S | re.M)
_CODE_SPAN = re.compile(r"`[^`\n]*`")
_LINK = re.compile(r"\[[^\]\n]*\]\((?P<target>[^)\s]+)(?:\s+\"[^\"]*\")?\)")
_HEADING = re.compile(r"^#{1,6}[ \t]+(?P<title>.+?)[ \t#]*$", re.M)


def _prose(text: str) -> str:
    """The page without code: fenced blocks become blank lines (line numbers stay)."""
    return _FENCED.sub(lambda m: "\n" * m.group(0).count("\n"), text)


def anchors(page: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens, and
    -1, -2, ... after a repeated one."""
    seen: dict[str, int] = {}
    found = set()
    for match in _HEADING.finditer(_prose(page.read_text())):
        slug = re.sub(r"[^\w\- ]", "", match.group("title").strip().lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    return found


def broken_links(page: Path) -> list[str]:
    """``page:line: target (why)`` for each relative link that leads nowhere."""
    prose = _prose(page.read_text())
    broken = []
    for match in _LINK.finditer(_CODE_SPAN.sub(lambda m: " " * len(m.group(0)), prose)):
        target = match.group("target")
        if re.match(r"[a-z][a-z0-9+.-]*:", target, re.I):  # https:, mailto:, ...
            continue
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        line = prose.count("\n", 0, match.start()) + 1
        where = f"{page.relative_to(ROOT) if page.is_relative_to(ROOT) else page}:{line}: {target}"
        if not file.exists():
            broken.append(f"{where} (no such file)")
        elif anchor and file.suffix == ".md" and anchor not in anchors(file):
            broken.append(f"{where} (no heading makes #{anchor} in {file.name})")
    return broken


@pytest.mark.parametrize("page", pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_and_anchor_resolves(page):
    assert not broken_links(page)


def test_a_missing_file_or_anchor_is_reported_and_code_is_not_read(tmp_path):
    (tmp_path / "other.md").write_text("# Other page\n\n## Set `up` it, now!\n\n## Set up it now\n")
    page = tmp_path / "page.md"
    page.write_text(
        "[ok](other.md#set-up-it-now) [ok too](other.md#set-up-it-now-1) [self](#a-title)\n"
        "# A title\n"
        "[gone](missing.md) [no anchor](other.md#nowhere) [web](https://example.com/x.md)\n"
        "`[in code](missing.md)`\n"
        "```text\n[in a block](missing.md)\n# not a heading\n```\n"
        "[block heading](#not-a-heading)\n"
    )
    assert broken_links(page) == [
        f"{page}:3: missing.md (no such file)",
        f"{page}:3: other.md#nowhere (no heading makes #nowhere in other.md)",
        f"{page}:9: #not-a-heading (no heading makes #not-a-heading in page.md)",
    ]
