"""``POST /materialize`` and ``POST /materialize-incremental`` (Feast's bodies)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool

from featurestore.clock import clock_us, from_micros
from featurestore.errors import InputError
from serving.auth import require_writer
from serving.body import field, read_json
from serving.routes import ERROR_RESPONSES
from serving.schemas import MaterializeIncrementalRequest, MaterializeRequest, MaterializeResponse, request_body
from serving.state import ServingState, get_state

__all__ = ["router"]

router = APIRouter(tags=["materialize"], dependencies=[Depends(require_writer)])


@router.post("/materialize", openapi_extra=request_body(MaterializeRequest), response_model=MaterializeResponse,
             responses=ERROR_RESPONSES)
async def materialize(request: Request, state: ServingState = Depends(get_state)) -> dict:
    """Load each entity's latest row with start_ts <= event time <= end_ts into the online store.
    The answer comes when the work is done."""
    body = await read_json(request, state.max_body_bytes, state.body_timeout)
    _no_version(body)
    if field(body, "disable_event_timestamp", bool, False):  # Feast: all rows up to now
        start, end = None, _time("now", state)
    else:
        start, end = field(body, "start_ts", str, None), _time(field(body, "end_ts", str), state)
    results = await run_in_threadpool(state.store.materialize, _time(start, state) if start else None, end,
                                      _views(body))
    return _answer(results)


@router.post("/materialize-incremental", openapi_extra=request_body(MaterializeIncrementalRequest),
             response_model=MaterializeResponse, responses=ERROR_RESPONSES)
async def materialize_incremental(request: Request, state: ServingState = Depends(get_state)) -> dict:
    """Load each view's rows from where its last materialization ended up to end_ts."""
    body = await read_json(request, state.max_body_bytes, state.body_timeout)
    _no_version(body)
    end = _time(field(body, "end_ts", str), state)
    results = await run_in_threadpool(state.store.materialize_incremental, end, _views(body))
    return _answer(results)


def _time(text: str, state: ServingState) -> datetime | str:
    # "now" by the store's clock (its time range is relative to it too); other strings go
    # to the store as they are: it parses ISO 8601, checks the range and names a bad one.
    return from_micros(clock_us(state.store.clock)) if text.strip().lower() == "now" else text


def _no_version(body: dict[str, Any]) -> None:
    if body.get("version") is not None:  # Feast's versioned feature views
        raise InputError("'version' is not supported: feature views have one definition here (the registry keeps "
                         "its history); leave 'version' out")


def _views(body: dict[str, Any]) -> list[str] | None:
    views = field(body, "feature_views", list, None)
    if views is not None and not all(isinstance(v, str) for v in views):
        raise InputError("'feature_views' must be a list of feature view names")
    return views or None


def _answer(results) -> dict:
    return {"views": [
        {"feature_view": r.view, "start": r.start.isoformat() if r.start else None, "end": r.end.isoformat(),
         "rows": r.rows, "seconds": round(r.seconds, 6)}
        for r in results
    ]}
