"""``store.get_historical_features``: a feature request resolved against the store's
definitions, its entity keys converted to the registered types, one offline request per
view (``view_request``, which materialization uses too) and a ``RetrievalJob`` that saves
through ``datasets.py``.

Functions take the ``FeatureStore`` (they read its definitions and backends); nothing
here imports it, so the facade stays the only way in.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from featurestore import datasets
from featurestore.definitions import FeatureService, FeatureView
from featurestore.entity_values import convert_key_columns
from featurestore.errors import InputError
from featurestore.offline.base import ViewRequest
from featurestore.refs import ResolvedView, resolve_request
from featurestore.retrieval import RetrievalJob, to_arrow_table
from featurestore.source_tables import source_table
from featurestore.transforms import input_types

__all__ = ["full_request", "historical_features", "view_request"]


def historical_features(store, entity_df: Any, features: Sequence[str] | FeatureService | str,
                        full_feature_names: bool, timestamp_field: str, known_at_timestamp: bool) -> RetrievalJob:
    """The point-in-time join of ``features`` onto ``entity_df`` (run when the job is read)."""
    contents = store.contents
    resolution = resolve_request(contents, features, full_feature_names)
    views = resolution.views
    aggregated = [v.view.name for v in views if v.view.aggregations]
    if known_at_timestamp and aggregated:
        raise InputError(
            f"known_at_timestamp=True applies to plain feature views, not to aggregation views "
            f"({', '.join(aggregated)}): their events count from their event time; request them "
            "in a separate call without the option"
        )
    entities = convert_key_columns(to_arrow_table(entity_df, store.offline), {
        f.name: f.dtype for v in views for f in v.view.schema if f.name in v.view.join_keys})

    def save(name: str, job: RetrievalJob) -> dict:
        return datasets.save_dataset(store.registry, store.project, store.config.offline_store, name, job).to_dict()

    return RetrievalJob(
        store.offline, entities, timestamp_field, views, [view_request(store, v) for v in views],
        known_at_timestamp, saver=save,
        transforms=[(t, input_types(t.odfv, contents)) for t in resolution.transforms],
        hidden=resolution.hidden,
    )


def view_request(store, rv: ResolvedView) -> ViewRequest:
    """What the offline engine reads for the resolved features of one view."""
    view = rv.view
    return ViewRequest(
        name=view.name,
        source=source_table(view, store.repo_path, store.config.offline_store, store.contents.sources.values()),
        join_keys=view.join_keys,
        features=rv.features,
        output_names=rv.output_names,
        ttl=view.ttl,
        aggregations=tuple(a for a in view.aggregations if a.name in rv.features),
        tie_columns=() if view.aggregations else view.feature_names,
        # Registered types of the source columns read (join key fields are filled in
        # at apply): reads check the files against them (offline/conform.py).
        declared=tuple((f.name, f.dtype) for f in view.schema),
    )


def full_request(store, view: FeatureView) -> ViewRequest:
    """The offline request of all of a view's features (what materialization reads)."""
    return view_request(store, ResolvedView(view, view.feature_names, view.feature_names))
