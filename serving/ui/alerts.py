"""What counts as an alert on a monitor run: the same limits the Prometheus alerts use
(deploy/alerts.yml), so the UI and the pager agree."""

from __future__ import annotations

from typing import Any

from monitoring.runs import MonitorResult

__all__ = ["SKEW_ALERT", "run_alerts"]

#: deploy/alerts.yml, FeatureStoreTrainingServingSkew: featurestore_skew_mismatch_ratio > 0.01.
SKEW_ALERT = 0.01


def run_alerts(result: MonitorResult) -> dict[str, Any]:
    """``drifted``: features whose drift test fired; ``skewed``: features whose served values
    differ from the offline recomputation in more than ``SKEW_ALERT`` of the rows."""
    drifted = [d["feature"] for d in result.drift if d.get("drifted")]
    skewed = [s["feature"] for s in result.skew if (s.get("mismatch_ratio") or 0) > SKEW_ALERT]
    return {"drifted": drifted, "skewed": skewed, "dataset_drift": result.dataset_drift,
            "alert": bool(result.dataset_drift or drifted or skewed)}
