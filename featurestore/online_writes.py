"""The store's runs into its online store: ``materialize``, ``materialize_incremental``,
``teardown``, and the clearing of a view's online values that ``apply`` does for a
retyped or removed view.

Each materialize run goes through ``jobs/runner.py`` (the view's lock, its job record)
around ``materialize.py``'s ``Materializer``, which owns the watermark. Functions take
the ``FeatureStore``; nothing here imports it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from featurestore.definitions import FeatureView
from featurestore.errors import InputError
from featurestore.historical import full_request
from featurestore.jobs.runner import run_manual
from featurestore.jobs.settings import JobSettings
from featurestore.materialize import MaterializeResult, Progress, check_online, explain_empty
from featurestore.online.base import online_view

__all__ = ["clear_online", "materialize", "materialize_incremental", "online_views", "teardown"]


def materialize(store, start: datetime | str | None, end: datetime | str, views: Sequence[str] | None,
                progress: Progress | None) -> list[MaterializeResult]:
    """One run per chosen view over ``start <= event_timestamp <= end``."""
    start, end = store.times.check(start, "materialize start"), store.times.check(end, "materialize end")
    if start is not None and start > end:
        raise InputError(f"materialize start {start} is after end {end}")
    settings = JobSettings.from_config(store.config)
    return [explain_empty(store.offline, full_request(store, v),
                          run_manual(store.materializer, store.locks, settings, v, start, end, progress))
            for v in online_views(store, views)]


def materialize_incremental(store, end: datetime | str, views: Sequence[str] | None,
                            progress: Progress | None) -> list[MaterializeResult]:
    """One run per chosen view from its watermark to ``end``."""
    end = store.times.check(end, "materialize end")
    settings = JobSettings.from_config(store.config)
    chosen = online_views(store, views)
    for view in chosen:  # an end before a watermark fails before any view runs
        store.materializer.incremental_start(view, end)
    return [run_manual(store.materializer, store.locks, settings, v, None, end, progress, incremental=True)
            for v in chosen]


def teardown(store, views: Sequence[str] | None) -> list[str]:
    """Clear the named views (or every view) online; their names."""
    chosen = (list(store.contents.feature_views.values()) if views is None
              else [store.get_feature_view(name) for name in views])
    for view in chosen:
        clear_online(store, view)
    return [view.name for view in chosen]


def clear_online(store, view: FeatureView) -> None:
    """Delete the view's online values (and aggregation events) and its watermark."""
    store.online.delete_view(online_view(view))
    if view.aggregations:
        store.aggregation_state.delete_view(view.name)
    # The next incremental run must start from scratch, not from the old watermark.
    store.materializer.reset(view.name)


def online_views(store, names: Sequence[str] | str | None) -> list[FeatureView]:
    """The named views (each must be online), or every online view."""
    if isinstance(names, str):
        names = [names]
    if names is None:
        return [v for v in store.contents.feature_views.values() if v.online]
    views = [store.get_feature_view(n) for n in names]
    check_online(views)
    return views
