"""A live progress line on a terminal, for commands that move many rows (materialize,
predict). It stays silent when stderr is not a terminal (logs, pipes, tests)."""

from __future__ import annotations

import sys
import time

import click

__all__ = ["ProgressLine"]

_WIDTH = 24


class ProgressLine:
    """Call it as ``progress(label, rows_done)``: one line per label, rewritten in place,
    with the running rate; with ``total`` rows known, a bar and the share done too."""

    def __init__(self, total: int | None = None) -> None:
        self.total = total
        self.last = time.perf_counter()
        self.began: dict[str, float] = {}
        self.live = sys.stderr.isatty()
        self.open = False

    def __call__(self, label: str, rows: int) -> None:
        now = time.perf_counter()
        # A label's clock starts where the previous label's last batch ended (or at the start).
        began = self.began.setdefault(label, self.last)
        self.last = now
        if self.live:
            rate = rows / max(now - began, 1e-9)
            click.echo(f"\r  {label}: {self._done(rows)}  ({rate:,.0f} rows/s)", nl=False, err=True)
            self.open = True

    def _done(self, rows: int) -> str:
        if not self.total:
            return f"{rows:,} rows"
        share = min(rows / self.total, 1.0)
        filled = round(share * _WIDTH)
        return f"[{'#' * filled}{'.' * (_WIDTH - filled)}] {share:4.0%}  {rows:,}/{self.total:,} rows"

    def close(self) -> None:
        if self.open:
            click.echo("", err=True)
            self.open = False
