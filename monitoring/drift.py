"""Drift: a window of served rows against the reference profile of the model version.

The test for each column is Evidently's default choice (``choose_method``), with its
thresholds; the statistics are scipy's:

================  =====================================  ==========================
reference rows    column                                 test, drifted when
================  =====================================  ==========================
<= 1000           numeric, > 5 distinct values           ``ks``: two-sample KS p <= 0.05
<= 1000           otherwise, > 2 distinct values         ``chisquare``: p <= 0.05
<= 1000           otherwise (two values)                 ``z``: proportions test p <= 0.05
> 1000            numeric, > 5 distinct values           ``wasserstein``: distance / reference std >= 0.1
> 1000            otherwise                              ``jensenshannon``: distance >= 0.1
any (opt-in)      any                                    ``psi``: index >= 0.1 (>= 0.2: significant)
================  =====================================  ==========================

Distinct values are counted over reference and current together, as Evidently does.
``chisquare`` is the two-sample test of homogeneity (where Evidently fits the current
counts to the reference's as if those were exact, which raises false alarms).
Besides the test, each column reports its null rate in both (``null_rate_jump`` when it
grew by ``null_rate_jump`` or more) and the share of current values outside the training
range (numeric) or categories (categorical). Fewer than ``min_rows`` current values:
``status`` is ``not_enough_data`` and the column is not judged. The dataset drifts when
at least ``share`` of the judged input features drift (the prediction is reported, not
counted). docs/monitoring.md measures the false-alarm rate of these defaults.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import pyarrow as pa

from featurestore.errors import ConfigError
from featurestore.models.profile import FEW_VALUES, PREDICTION, category_key, column_values

__all__ = ["DriftResult", "DriftSettings", "FeatureDrift", "METHODS", "choose_method", "compare", "statistic"]

METHODS = ("ks", "chisquare", "z", "wasserstein", "jensenshannon", "psi")
#: Evidently's default thresholds: p-values for the tests, distances for the others.
THRESHOLDS = {"ks": 0.05, "chisquare": 0.05, "z": 0.05, "wasserstein": 0.1, "jensenshannon": 0.1, "psi": 0.1}
P_VALUE_METHODS = ("ks", "chisquare", "z")
PSI_SIGNIFICANT = 0.2
NOT_ENOUGH_DATA, OK = "not_enough_data", "ok"


@dataclass(frozen=True)
class DriftSettings:
    """How drift is judged; ``monitoring.models.<name>`` in featurestore.yaml sets them."""

    min_rows: int = 100
    share: float = 0.5
    null_rate_jump: float = 0.1
    methods: Mapping[str, str] = field(default_factory=dict)  # feature -> method ("*": every feature)
    thresholds: Mapping[str, float] = field(default_factory=dict)  # method -> threshold

    def __post_init__(self):
        for feature, method in self.methods.items():
            if method not in METHODS:
                raise ConfigError(f"drift method {method!r} for {feature!r} is not known; use one of "
                                  f"{', '.join(METHODS)}")
        for method, value in self.thresholds.items():
            if method not in METHODS or not isinstance(value, (int, float)) or value <= 0:
                raise ConfigError(f"drift threshold {method}: {value!r}: give a known method ({', '.join(METHODS)}) "
                                  "and a positive number")
        if self.min_rows < 1 or not 0 < self.share <= 1:
            raise ConfigError(f"drift min_rows must be >= 1 and share in (0, 1], got {self.min_rows}, {self.share}")

    def with_(self, **changes) -> DriftSettings:
        return replace(self, **changes)

    def threshold(self, method: str) -> float:
        return float(self.thresholds.get(method, THRESHOLDS[method]))


@dataclass(frozen=True)
class FeatureDrift:
    """One column's verdict (``feature``, ``method``, ``statistic``, ``threshold``,
    ``drifted`` are the pinned keys) and what the report draws (``current``)."""

    feature: str
    method: str
    statistic: float | None
    threshold: float
    drifted: bool
    status: str
    rows: int
    reference_null_rate: float
    current_null_rate: float
    null_rate_jump: bool
    outside_training: float
    outside_examples: list
    current: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class DriftResult:
    features: list[FeatureDrift]
    dataset_drift: bool
    drifted_share: float
    status: str

    def to_dict(self) -> dict[str, Any]:
        return {"drift": [f.to_dict() for f in self.features], "dataset_drift": self.dataset_drift,
                "drifted_share": self.drifted_share, "status": self.status}


def compare(profile: Mapping[str, Any], current: pa.Table, settings: DriftSettings | None = None) -> DriftResult:
    """Each profiled column present in ``current`` against its reference; inputs first,
    then ``prediction``."""
    settings = settings or DriftSettings()
    columns = profile["columns"]
    order = profile.get("order") or list(columns)
    names = [n for n in order if n != PREDICTION] + ([PREDICTION] if PREDICTION in columns else [])
    results = [_column(name, columns[name], current, settings) for name in names if name in current.column_names]
    judged = [r for r in results if r.status == OK and r.feature != PREDICTION]
    share = sum(r.drifted for r in judged) / len(judged) if judged else 0.0
    status = OK if judged else NOT_ENOUGH_DATA
    return DriftResult(results, bool(judged) and share >= settings.share, share, status)


def choose_method(reference: Mapping[str, Any], current: np.ndarray) -> str:
    """Evidently's default test for a column (the table above)."""
    n_values = _distinct(reference, current)
    numeric = reference["kind"] == "numeric"
    if reference["rows"] <= 1000:
        if numeric and n_values > 5:
            return "ks"
        return "chisquare" if n_values > 2 else "z"
    return "wasserstein" if numeric and n_values > 5 else "jensenshannon"


def statistic(method: str, reference: Mapping[str, Any], current: np.ndarray) -> float:
    """The method's statistic (a p-value for ks, chisquare and z) of ``current`` values
    against the reference column profile."""
    try:
        from scipy import stats
        from scipy.spatial import distance
    except ImportError:
        raise ConfigError("drift tests need scipy: pip install 'featurestore[monitoring]'") from None

    if method == "ks":
        return float(stats.ks_2samp(np.asarray(reference["sample"]), current).pvalue)
    if method == "wasserstein":
        sample = np.asarray(reference["sample"])
        return float(stats.wasserstein_distance(sample, current) / max(float(np.std(sample)), 0.001))
    if method == "chisquare":
        # Homogeneity of the two samples (a 2 x k table), not goodness of fit to the
        # reference as if it were exact: that one alarms on ~25% of same-distribution
        # windows when both samples have a few hundred rows.
        ref, cur = _counts(reference, current)
        return float(stats.chi2_contingency(np.array([ref, cur]), correction=False).pvalue)
    if method == "z":
        ref, cur = _counts(reference, current)
        if len(ref) < 2:  # one value in both: the same proportion
            return 1.0
        table = np.array([[ref[0], ref.sum() - ref[0]], [cur[0], cur.sum() - cur[0]]])
        return float(stats.chi2_contingency(table, correction=False).pvalue)  # = two-sided z-test
    ref_share, cur_share = _binned(reference, current)
    if method == "jensenshannon":
        return float(distance.jensenshannon(ref_share, cur_share))
    if method == "psi":
        ref_share, cur_share = np.where(ref_share == 0, 0.0001, ref_share), np.where(cur_share == 0, 0.0001, cur_share)
        return float(np.sum((ref_share - cur_share) * np.log(ref_share / cur_share)))
    raise ConfigError(f"drift method {method!r} is not known; use one of {', '.join(METHODS)}")


def _column(name: str, reference: Mapping[str, Any], table: pa.Table, settings: DriftSettings) -> FeatureDrift:
    values, nulls = column_values(table.column(name), reference["kind"])
    if reference["kind"] == "categorical":
        values = np.asarray([category_key(v) for v in values], dtype=object)
    rows = len(values)
    null_rate = nulls / (rows + nulls) if rows + nulls else 0.0
    method = settings.methods.get(name) or settings.methods.get("*") or choose_method(reference, values)
    threshold = settings.threshold(method)
    value, drifted, status = None, False, NOT_ENOUGH_DATA
    if rows >= settings.min_rows and reference["rows"] - reference["nulls"] > 0:
        value = statistic(method, reference, values)
        value = None if math.isnan(value) else value
        drifted = value is not None and (value <= threshold if method in P_VALUE_METHODS else value >= threshold)
        status = OK
    outside = _outside(reference, values)
    return FeatureDrift(
        feature=name, method=method, statistic=value, threshold=threshold, drifted=bool(drifted), status=status,
        rows=rows, reference_null_rate=reference["null_rate"], current_null_rate=null_rate,
        null_rate_jump=rows + nulls >= settings.min_rows and null_rate - reference["null_rate"] >= settings.null_rate_jump,
        outside_training=len(outside) / rows if rows else 0.0,
        outside_examples=sorted({_plain(v) for v in outside[:1000]}, key=str)[:5],
        current=_summary(reference, values),
    )


def _distinct(reference: Mapping[str, Any], current: np.ndarray) -> int:
    if "frequencies" not in reference or reference.get("other"):
        return reference["unique"]
    keys = set(reference["frequencies"])
    keys.update(category_key(v) for v in np.unique(current))
    return len(keys)


def _counts(reference: Mapping[str, Any], current: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Counts per value over the values of both (reference first, in its order)."""
    ref = dict(reference.get("frequencies") or {})
    uniques, counts = np.unique(np.asarray([category_key(v) for v in current], dtype=object), return_counts=True)
    cur = dict(zip(uniques.tolist(), counts.tolist()))
    keys = list(ref) + sorted(k for k in cur if k not in ref)
    return (np.array([ref.get(k, 0) for k in keys], dtype=float), np.array([cur.get(k, 0) for k in keys], dtype=float))


def _binned(reference: Mapping[str, Any], current: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Shares per bin (numeric with more than FEW_VALUES values: Sturges bins over both,
    as Evidently) or per value."""
    if reference["kind"] == "numeric" and reference["unique"] > FEW_VALUES:
        sample = np.asarray(reference["sample"])
        edges = np.histogram_bin_edges(np.concatenate([sample, current]), bins="sturges")
        return np.histogram(sample, edges)[0] / len(sample), np.histogram(current, edges)[0] / len(current)
    ref, cur = _counts(reference, current)
    return ref / ref.sum(), cur / cur.sum()


def _outside(reference: Mapping[str, Any], values: np.ndarray) -> np.ndarray:
    if reference["kind"] == "numeric":
        if "min" not in reference:
            return values[:0]
        return values[(values < reference["min"]) | (values > reference["max"])]
    if reference.get("other"):  # categories beyond the kept ones: unseen ones cannot be told apart
        return values[:0]
    known = set(reference.get("frequencies") or {})
    return values[[v not in known for v in values]] if len(values) else values


def _summary(reference: Mapping[str, Any], values: np.ndarray) -> dict[str, Any]:
    """The current distribution in the reference's terms, for the report."""
    if "histogram" in reference and reference["kind"] == "numeric" and reference["unique"] > FEW_VALUES:
        edges = np.asarray(reference["histogram"]["edges"])
        return {"counts": np.histogram(values, edges)[0].tolist(), "below": int((values < edges[0]).sum()),
                "above": int((values > edges[-1]).sum())}
    keys = [category_key(v) for v in values]
    uniques, counts = np.unique(np.asarray(keys, dtype=object), return_counts=True) if keys else ([], [])
    order = np.argsort(-np.asarray(counts), kind="stable")[:50]
    return {"frequencies": {str(uniques[i]): int(counts[i]) for i in order}}


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value
