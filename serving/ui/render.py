"""Jinja2 templates of the UI (``serving/ui/templates``), autoescaped, loaded once."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import HTMLResponse

from serving.ui.links import duration, lineage_path, object_path

__all__ = ["render"]

_ENV = Environment(loader=PackageLoader("serving.ui", "templates"), autoescape=select_autoescape(default=True),
                   trim_blocks=True, lstrip_blocks=True)


def _when(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.strftime("%Y-%m-%d %H:%M:%S UTC")


def _data(value: Any) -> Markup:
    """``value`` as JSON for a ``<script type="application/json">`` island: ``<`` escaped,
    so no value can close the script element."""
    return Markup(json.dumps(value, default=str).replace("<", "\\u003c").replace(">", "\\u003e")
                  .replace("&", "\\u0026"))


def _number(value: Any, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


_ENV.filters.update(when=_when, data=_data, number=_number, duration=duration, percent=lambda v: f"{v:.0%}")
_ENV.globals.update(object_path=object_path, lineage_path=lineage_path)


# Pages load only the UI's own files; the monitor report is framed from the same origin.
_POLICY = ("default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'; "
           "frame-src 'self'; frame-ancestors 'self'; form-action 'self'; base-uri 'none'")


def render(request: Request, template: str, page: dict[str, Any], status: int = 200, **headers: str) -> HTMLResponse:
    """The page: ``page`` plus what every page shows (the UI's root, project, Grafana link)."""
    ui = request.app.state.ui
    context = {"base": request.scope.get("root_path", ""), "project": ui.project, "grafana": ui.grafana_url,
               "active": template.split(".")[0], **page}
    return HTMLResponse(_ENV.get_template(template).render(context), status_code=status,
                        headers={"Content-Security-Policy": _POLICY, **headers})
