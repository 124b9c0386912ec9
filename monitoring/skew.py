"""Training-serving skew: do the features served online equal what
``get_historical_features`` computes for the same entities at the same time?

For a window of the serving log (``store.get_logs``), the logged entity keys and request
fields are sent to ``get_historical_features`` with each row's ``log_time`` as its
entity timestamp, and every logged feature is compared cell by cell with its recomputed
value. ``log_time`` is the right time because the online read answered "the newest value
as of now, within ttl" at that very instant (the store's clock gives both), which is the
point-in-time rule offline with T = log_time (docs/concepts.md). Comparing at the logged
``<f>__event_timestamp`` instead would hide a stale online store: offline would then look
up the same old row the online store served. What counts as skew, then: a value pushed
online only, an online store behind the offline data (a late or failed
materialization), a transform that computes differently online; also rows written
offline after the request with an event time before it (a late backfill), which the
online store could not have served.

Per feature: integers, strings, bools and lists compare exactly, floats within
``abs_tol + rel_tol * |offline|`` (both NaN agree); a null on one side only counts as a
mismatch, and is also counted by side.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from featurestore.definitions import FeatureService
from featurestore.serving_log import LATENCY_MS, META_SCHEMA, OUTCOME, PREDICTION, feature_columns, logged_features
from featurestore.store import FeatureStore

__all__ = ["FeatureSkew", "compare_log", "feature_skew"]

#: Float tolerances: Float32 values round-trip exactly through both stores, so any
#: difference beyond float noise is a real one.
REL_TOL = 1e-6
ABS_TOL = 1e-9


@dataclass
class FeatureSkew:
    """The comparison of one feature over a window; ``to_dict`` is its JSON."""

    feature: str
    compared: int = 0
    value_mismatches: int = 0  # both present, different
    served_null_offline_present: int = 0
    offline_null_served_present: int = 0
    max_abs_diff: float | None = None  # numeric features only
    examples: list[dict[str, Any]] = field(default_factory=list)  # the largest differences first

    @property
    def mismatched(self) -> int:
        return self.value_mismatches + self.served_null_offline_present + self.offline_null_served_present

    @property
    def mismatch_ratio(self) -> float:
        return self.mismatched / self.compared if self.compared else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"feature": self.feature, "mismatch_ratio": self.mismatch_ratio, "compared": self.compared,
                "mismatched": self.mismatched, "value_mismatches": self.value_mismatches,
                "served_null_offline_present": self.served_null_offline_present,
                "offline_null_served_present": self.offline_null_served_present,
                "max_abs_diff": self.max_abs_diff, "examples": self.examples}


def feature_skew(store: FeatureStore, name: str, start: datetime | str | None = None,
                 end: datetime | str | None = None, *, features: FeatureService | str | Sequence[str] | None = None,
                 rel_tol: float = REL_TOL, abs_tol: float = ABS_TOL, examples: int = 5) -> list[dict[str, Any]]:
    """Skew of the log of ``name`` (a model or a feature service) with ``start <= log_time
    < end``: one dict per logged feature, ``{feature, mismatch_ratio, compared, ...}``
    (empty for an empty window). ``features`` says what to recompute; by default the
    feature service of that name, or for a model each logged version's features."""
    log = store.get_logs(name, start, end)
    if log.num_rows == 0:
        return []
    if features is not None or name in store.contents.feature_services:
        results = compare_log(store, log, features if features is not None else name, rel_tol, abs_tol, examples)
    else:  # a model: each version read its own features
        results = {}
        versions = log.column("version")
        for version in pc.unique(versions).to_pylist():
            refs = list(store.models.get(f"{name}/{version}").features)
            part = log.filter(pc.equal(versions, version)) if version is not None else log.filter(pc.is_null(versions))
            for skew in compare_log(store, part, refs, rel_tol, abs_tol, examples).values():
                _merge(results.setdefault(skew.feature, FeatureSkew(skew.feature)), skew, examples)
    return [skew.to_dict() for skew in results.values()]


def compare_log(store: FeatureStore, log: pa.Table, features: FeatureService | str | Sequence[str],
                rel_tol: float = REL_TOL, abs_tol: float = ABS_TOL, examples: int = 5) -> dict[str, FeatureSkew]:
    """Per logged feature that ``features`` computes, the skew of ``log``'s rows."""
    logged = logged_features(log.schema)
    dropped = {c for f in logged for c in feature_columns(f)} | set(META_SCHEMA.names) | {PREDICTION, OUTCOME, LATENCY_MS}
    entities = log.select([c for c in log.column_names if c not in dropped or c == "log_time"])
    keys = [c for c in entities.column_names if c != "log_time"]
    if isinstance(features, (str, FeatureService)):  # logged under the service's output names
        offline = store.get_historical_features(entities, features, timestamp_field="log_time").to_arrow()
        pairs = {f: f for f in logged if f in offline.column_names}
    else:  # a model's refs, logged as its signature names them: feature, or view__feature
        offline = store.get_historical_features(entities, list(features), full_feature_names=True,
                                                timestamp_field="log_time").to_arrow()
        pairs = {}
        for view, feature in (ref.split(":", 1) for ref in features):
            pairs.update({name: f"{view}__{feature}" for name in (feature, f"{view}__{feature}") if name in logged})
    return {f: _compare(f, log, offline.column(column), keys, rel_tol, abs_tol, examples)
            for f, column in pairs.items()}


def _compare(feature: str, log: pa.Table, offline: pa.ChunkedArray, keys: list[str], rel_tol: float, abs_tol: float,
             limit: int) -> FeatureSkew:
    served = log.column(feature)
    served_null = served.is_null().to_numpy(zero_copy_only=False)
    offline_null = offline.is_null().to_numpy(zero_copy_only=False)
    both = ~served_null & ~offline_null
    skew = FeatureSkew(feature, compared=len(served), served_null_offline_present=int((served_null & ~offline_null).sum()),
                       offline_null_served_present=int((~served_null & offline_null).sum()))
    numeric = pa.types.is_floating(served.type) or pa.types.is_integer(served.type)
    if numeric:
        s = served.cast(pa.float64()).fill_null(0).to_numpy()
        o = offline.cast(pa.float64()).fill_null(0).to_numpy()
        with np.errstate(invalid="ignore"):
            diff = np.where(both, np.abs(s - o), 0.0)
        nan_both = np.isnan(s) & np.isnan(o)
        diff = np.where(nan_both, 0.0, diff)
        if pa.types.is_floating(served.type):
            differs = both & ~nan_both & ~(diff <= abs_tol + rel_tol * np.abs(o))
        else:
            differs = both & pc.not_equal(served, offline).fill_null(False).to_numpy(zero_copy_only=False)
        skew.max_abs_diff = float(np.nanmax(diff)) if len(diff) and both.any() else None
        order = np.argsort(-np.nan_to_num(diff, nan=np.inf), kind="stable")
    else:
        s_values, o_values = served.to_pylist(), offline.to_pylist()
        differs = np.array([b and x != y for b, x, y in zip(both, s_values, o_values)], dtype=bool)
        order = np.arange(len(served))
    skew.value_mismatches = int(differs.sum())
    wrong = differs | (served_null != offline_null)
    for i in [int(i) for i in order if wrong[i]][:limit]:
        skew.examples.append(_example(log, offline, keys, feature, i, diff[i] if numeric and both[i] else None))
    return skew


def _example(log: pa.Table, offline: pa.ChunkedArray, keys: list[str], feature: str, i: int,
             diff: float | None) -> dict[str, Any]:
    return {"entity": {k: log.column(k)[i].as_py() for k in keys},
            "log_time": log.column("log_time")[i].as_py().isoformat(),
            "served": log.column(feature)[i].as_py(), "offline": offline[i].as_py(),
            "abs_diff": None if diff is None else float(diff)}


def _merge(total: FeatureSkew, part: FeatureSkew, limit: int) -> None:
    total.compared += part.compared
    total.value_mismatches += part.value_mismatches
    total.served_null_offline_present += part.served_null_offline_present
    total.offline_null_served_present += part.offline_null_served_present
    if part.max_abs_diff is not None:
        total.max_abs_diff = max(total.max_abs_diff or 0.0, part.max_abs_diff)
    total.examples = sorted(total.examples + part.examples, key=lambda e: -(e["abs_diff"] or 0.0))[:limit]
