"""Small step and line charts as SVG path data, drawn by the templates (no script needed).

The rollout page plots the candidate's weight over time, the monitoring page each run's
share of drifted features; Grafana has the dense time series (``serving.grafana_url``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

__all__ = ["WIDTH", "HEIGHT", "time_chart"]

WIDTH, HEIGHT, PAD = 640, 160, 28


def time_chart(points: Sequence[tuple[datetime, float]], top: float, step: bool = False) -> dict | None:
    """``{"path", "dots", "width", "height", "top", "first", "last"}`` for the values over
    time (``step``: each value holds until the next), scaled into 0..``top``; None when empty."""
    if not points:
        return None
    times = [t.timestamp() for t, _ in points]
    low, high = min(times), max(times)
    span = (high - low) or 1.0
    top = top or 1.0

    def x(t: float) -> float:
        return round(PAD + (t - low) / span * (WIDTH - 2 * PAD), 1) if high > low else WIDTH / 2

    def y(v: float) -> float:
        return round(HEIGHT - PAD - min(max(v, 0.0), top) / top * (HEIGHT - 2 * PAD), 1)

    coords = [(x(t), y(v)) for t, (_, v) in zip(times, points)]
    path = [f"M{coords[0][0]},{coords[0][1]}"]
    for (px, py), (cx, cy) in zip(coords, coords[1:]):
        path.append(f"H{cx}V{cy}" if step else f"L{cx},{cy}")
    dots = [{"x": cx, "y": cy, "value": v, "at": t} for (cx, cy), (t, v) in zip(coords, points)]
    return {"path": " ".join(path), "dots": dots, "width": WIDTH, "height": HEIGHT, "pad": PAD, "top": top,
            "first": points[0][0], "last": points[-1][0]}
