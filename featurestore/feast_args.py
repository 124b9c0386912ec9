"""Feast's keyword spellings of the facade's arguments, mapped to ours in one place:
``start_date``/``end_date``/``feature_views`` (materialize), ``disable_event_timestamp``,
``filter_by_created_timestamp`` (our ``known_at_timestamp``: the same meaning), and
``start_date``/``end_date`` on retrieval (refused: there is no entity-less retrieval)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from featurestore.errors import InputError

__all__ = ["either", "no_entityless_retrieval"]


def either(ours: str, value: Any, feasts: str, feast_value: Any) -> Any:
    """The argument given under our name or Feast's; an InputError when both disagree."""
    if feast_value is None:
        return value
    if value is not None and value != feast_value:
        raise InputError(f"give {ours} or Feast's {feasts}, not both")
    return feast_value


def no_entityless_retrieval(entity_df: Any, start_date: datetime | None, end_date: datetime | None) -> None:
    if entity_df is None or start_date is not None or end_date is not None:
        raise InputError(
            "get_historical_features needs an entity_df: retrieval over a time range without one "
            "(Feast's start_date/end_date) is not supported; pass the entity keys and times to join, "
            "e.g. the rows of the view's source between those dates"
        )
