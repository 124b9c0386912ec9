"""``POST /push`` (rows into the views fed by a push source) and ``POST /write-to-online-store``
(rows of one view, as Feast's remote online store sends them): Feast's shapes."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool

from featurestore.errors import InputError
from featurestore.push import PUSH_TARGETS
from monitoring.metrics import PUSH_LATE_EVENTS, PUSH_ROWS
from serving.auth import require_writer
from serving.body import field, read_json
from serving.routes import ERROR_RESPONSES
from serving.schemas import PushRequest, PushResponse, WriteToOnlineStoreRequest, WriteToOnlineStoreResponse, request_body
from serving.state import ServingState, get_state

__all__ = ["router"]

router = APIRouter(tags=["push"])


def _write_route(path: str, body: type, answer: type):
    """A route that writes rows: a writer's key, a documented body read by the route itself."""
    return router.post(path, dependencies=[Depends(require_writer)], openapi_extra=request_body(body),
                       response_model=answer, responses=ERROR_RESPONSES)


@_write_route("/push", PushRequest, PushResponse)
async def push(request: Request, state: ServingState = Depends(get_state)) -> dict:
    """Validate the rows against the views' schemas, then write them online (newer event
    time wins), offline (a new Parquet file, seen by training sets) or both. Nothing is
    written when any row is invalid."""
    body = await read_json(request, state.max_body_bytes, state.body_timeout)
    name = field(body, "push_source_name", str)
    df = field(body, "df", (dict, list))
    to = field(body, "to", str, "online")
    if to not in PUSH_TARGETS:
        raise InputError(f"'to' is {to!r}; use one of {', '.join(PUSH_TARGETS)}")
    # Validation, Arrow conversion and the writes are blocking work: off the event loop.
    result = await run_in_threadpool(state.store.push, name, df, to)
    PUSH_ROWS.labels(name, to).inc(result.rows)
    for view, late in result.late.items():
        if late:
            PUSH_LATE_EVENTS.labels(view).inc(late)
    return {"push_source_name": name, "to": to, "rows": result.rows}


@_write_route("/write-to-online-store", WriteToOnlineStoreRequest, WriteToOnlineStoreResponse)
async def write_to_online_store(request: Request, state: ServingState = Depends(get_state)) -> dict:
    """Rows of one feature view into the online store (newer event time wins), checked as a
    push is; what Feast's remote online store sends for ``push`` and ``write_to_online_store``."""
    body = await read_json(request, state.max_body_bytes, state.body_timeout)
    name = field(body, "feature_view_name", str)
    df = field(body, "df", (dict, list))
    rows = await run_in_threadpool(state.store.write_to_online_store, name, df)
    PUSH_ROWS.labels(name, "online").inc(rows)
    return {"feature_view_name": name, "rows": rows}
