"""Feast's keyword spellings of the facade's arguments, mapped to ours in one place:
``start_date``/``end_date``/``feature_views`` (materialize), ``disable_event_timestamp``,
``filter_by_created_timestamp`` (our ``known_at_timestamp``: the same meaning), and
``start_date``/``end_date`` on retrieval (refused: there is no entity-less retrieval)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from featurestore.clock import clock_us, from_micros
from featurestore.errors import InputError

__all__ = ["either", "incremental_args", "materialize_args", "no_entityless_retrieval", "retrieval_args"]


def either(ours: str, value: Any, feasts: str, feast_value: Any) -> Any:
    """The argument given under our name or Feast's; an InputError when both disagree."""
    if feast_value is None:
        return value
    if value is not None and value != feast_value:
        raise InputError(f"give {ours} or Feast's {feasts}, not both")
    return feast_value


def materialize_args(start: Any, end: Any, views: Sequence[str] | None, *, start_date: Any, end_date: Any,
                     feature_views: Sequence[str] | None, disable_event_timestamp: bool,
                     clock: Callable[[], float]) -> tuple[Any, Any, Sequence[str] | None]:
    """``materialize``'s ``(start, end, views)`` from either spelling; Feast's
    ``disable_event_timestamp`` means every row up to now (``clock``)."""
    start, views = either("start", start, "start_date", start_date), either("views", views, "feature_views", feature_views)
    end = from_micros(clock_us(clock)) if disable_event_timestamp else either("end", end, "end_date", end_date)
    start = None if disable_event_timestamp else start
    if end is None:
        raise InputError("materialize needs an end time: end= (or Feast's end_date=), or 'now'")
    return start, end, views


def incremental_args(end: Any, views: Sequence[str] | None, *, end_date: Any,
                     feature_views: Sequence[str] | None) -> tuple[Any, Sequence[str] | None]:
    """``materialize_incremental``'s ``(end, views)`` from either spelling."""
    end, views = either("end", end, "end_date", end_date), either("views", views, "feature_views", feature_views)
    if end is None:
        raise InputError("materialize_incremental needs an end time: end= (or Feast's end_date=)")
    return end, views


def retrieval_args(entity_df: Any, known_at_timestamp: bool, *, filter_by_created_timestamp: bool,
                   start_date: datetime | None, end_date: datetime | None) -> bool:
    """``get_historical_features``'s ``known_at_timestamp`` from either spelling, after
    refusing Feast's entity-less retrieval."""
    no_entityless_retrieval(entity_df, start_date, end_date)
    return known_at_timestamp or filter_by_created_timestamp


def no_entityless_retrieval(entity_df: Any, start_date: datetime | None, end_date: datetime | None) -> None:
    if entity_df is None or start_date is not None or end_date is not None:
        raise InputError(
            "get_historical_features needs an entity_df: retrieval over a time range without one "
            "(Feast's start_date/end_date) is not supported; pass the entity keys and times to join, "
            "e.g. the rows of the view's source between those dates"
        )
