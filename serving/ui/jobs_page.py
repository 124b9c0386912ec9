"""Page data of the Jobs page: materialization runs, newest first, filtered by view and
status, as ``GET /jobs`` answers them (the same disclosure rules)."""

from __future__ import annotations

from typing import Any

from featurestore.errors import InputError
from featurestore.jobs.runner import record_json
from registry.jobs import STATUSES
from serving.disclosure import public_job

__all__ = ["jobs_page"]


def jobs_page(store, view: str | None, status: str | None, trusted: bool, limit: int = 200) -> dict[str, Any]:
    view, status = view or None, status or None
    if status is not None and status not in STATUSES:
        raise InputError(f"status {status!r} is not one of {', '.join(STATUSES)}; pick one in the filter")
    records = store.registry.jobs.list(store.project, target=view, statuses=(status,) if status else None,
                                       limit=limit)
    shown = [record_json(r) for r in records]
    views = [o.name for o in store.registry.list(store.project, "feature_view")]
    return {"jobs": shown if trusted else [public_job(j) for j in shown], "views": views, "statuses": STATUSES,
            "view": view, "status": status, "limit": limit}
