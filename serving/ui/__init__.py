"""The web UI at ``/ui``: features, lineage, models, rollouts, monitoring and jobs as
server-rendered pages (Jinja2 templates, one stylesheet, one small script, all shipped in
the package; nothing is fetched from the network). See docs/ui.md.

``create_ui(state)`` builds it over a server's state; ``serving.app.create_app`` mounts it.
Each page's data comes from a small function over the store (``overview``,
``definitions``, ``lineage_graph``, ``models_pages``, ``monitoring_pages``, ``jobs_page``),
testable without a browser; ``session`` is how a browser passes the API key.
"""

from serving.ui.app import create_ui

__all__ = ["create_ui"]
