"""``/monitoring/models/{name}``: a model's latest monitor run, its history and its report.

Reads only: runs are made by ``featurestore monitor run``, ``store.monitor`` or the
scheduler and kept in the registry (monitoring/runs.py). Shapes are
``MonitorResult.to_dict()``; the report is the page ``featurestore monitor report`` writes.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query
from starlette.responses import HTMLResponse

from featurestore.errors import NotFoundError
from monitoring.report import model_report
from monitoring.runs import history
from serving.auth import require_reader
from serving.routes import ERROR_RESPONSES
from serving.state import ServingState, get_state

__all__ = ["router"]

router = APIRouter(prefix="/monitoring", tags=["monitoring"], responses=ERROR_RESPONSES)


# Plain ``def`` routes: registry reads and drawing block, so they run in the thread pool.

@router.get("/models/{name}", dependencies=[Depends(require_reader)])
def latest_run(name: str, state: ServingState = Depends(get_state)) -> dict:
    """The model's latest monitor run: ``drift``, ``dataset_drift``, ``skew``, window, versions."""
    runs = history(state.store, name, limit=1)
    if not runs:
        raise NotFoundError("monitor run of model", name,
                            hint=f"none yet: `featurestore monitor run {name}` or a schedule under "
                                 "monitoring.models in featurestore.yaml makes one")
    return runs[0].to_dict()


@router.get("/models/{name}/history", dependencies=[Depends(require_reader)])
def run_history(name: str, limit: int = Query(20, ge=1, le=1000), state: ServingState = Depends(get_state)) -> dict:
    """The model's monitor runs, newest first."""
    return {"model": name, "runs": [r.to_dict() for r in history(state.store, name, limit)]}


@router.get("/models/{name}/report", dependencies=[Depends(require_reader)], response_class=HTMLResponse)
def report(name: str, state: ServingState = Depends(get_state)) -> HTMLResponse:
    """The latest run as a self-contained HTML page (plots inline, nothing fetched)."""
    return HTMLResponse(model_report(state.store, name))
