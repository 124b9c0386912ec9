"""A real headless browser for the tests that open pages: Debian's chromium driven by
Playwright (which downloads no browser of its own; .ci/run installs chromium)."""

from __future__ import annotations

import os
import shutil

import pytest

__all__ = ["CHROMIUM", "launch_chromium", "needs_chromium", "watch_errors"]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"

# No sandbox (containers and CI run as root); no GPU; and nothing that phones home, so a
# page that fetched anything from the network would be the page's doing.
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--no-first-run"]

needs_chromium = pytest.mark.skipif(not os.path.exists(CHROMIUM),
                                    reason="needs Chromium (.ci/run installs Debian's chromium)")


def launch_chromium(playwright):
    return playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)


def watch_errors(page, errors: list[str], allowed_origin: str) -> None:
    """Append to ``errors`` every console error, uncaught exception, and request to
    anywhere but ``allowed_origin`` (a ``file:`` page: ``"file:"``)."""
    page.on("console", lambda m: errors.append(f"console: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
    page.on("request", lambda r: None if r.url.startswith(allowed_origin) else errors.append(f"fetched {r.url}"))
