"""``GET /jobs``: the materialization runs recorded in the registry, newest first.

Mount with ``app.include_router(jobs.router)`` (see serving/app.py). Query parameters:
``view``, ``trigger`` (scheduled, backfill, manual), ``status`` (repeatable),
``failed=true`` (failed or interrupted), ``limit`` (default 100, at most 1000).
Each run is ``{"id", "view", "trigger", "window_start", "window_end", "status",
"started_at", "ended_at", "seconds", "rows", "error", "attempt", "batch", "owner"}``.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, Query, Request

from featurestore.errors import InputError
from featurestore.jobs.runner import record_json
from registry.jobs import STATUSES
from serving.auth import require_reader
from serving.disclosure import public_job, trusted
from serving.routes import ERROR_RESPONSES
from serving.state import ServingState, get_state

__all__ = ["router"]

router = APIRouter(tags=["jobs"], dependencies=[Depends(require_reader)], responses=ERROR_RESPONSES)


# A plain ``def``: the registry read is a blocking SQLite call, so it runs in the thread pool.
@router.get("/jobs")
def list_jobs(
    request: Request,
    view: str | None = None,
    trigger: Literal["scheduled", "backfill", "manual"] | None = None,
    status: list[str] | None = Query(None),
    failed: bool = False,
    limit: int = Query(100, ge=1, le=1000),
    state: ServingState = Depends(get_state),
) -> dict:
    """Materialization runs (scheduled, backfill chunks, manual), newest first. Without a
    valid API key, owners carry no host or pid and errors no paths (serving/disclosure.py)."""
    unknown = [s for s in status or () if s not in STATUSES]
    if unknown:
        raise InputError(f"status {unknown[0]!r} is not one of {', '.join(STATUSES)}")
    statuses = ("failed", "interrupted") if failed else status
    store = state.store
    records = store.registry.jobs.list(store.project, target=view, trigger=trigger, statuses=statuses, limit=limit)
    shown = [record_json(r) for r in records]
    return {"jobs": shown if trusted(request) else [public_job(r) for r in shown]}
