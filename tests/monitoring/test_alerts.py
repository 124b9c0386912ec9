"""deploy/alerts.yml checked and unit-tested by promtool (Debian's prometheus package;
.ci/run installs it when it can), and the Grafana panels of the monitor gauges."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed (apt-get install prometheus)")

UNIT_TESTS = """
rule_files: [{rules}]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'featurestore_dataset_drift{{model="churn"}}'
        values: '0 0 1 1'
      - series: 'featurestore_dataset_drift{{model="fraud"}}'
        values: '0 0 0 0'
      - series: 'featurestore_skew_mismatch_ratio{{model="churn",feature="amount"}}'
        values: '0 0.002 0.05 0.05'
    alert_rule_test:
      - eval_time: 3m
        alertname: FeatureStoreDatasetDrift
        exp_alerts:
          - exp_labels: {{model: churn}}
            exp_annotations:
              summary: "churn: at least half of its features drifted from the training set"
              description: "featurestore monitor report churn --out report.html shows which and how"
      - eval_time: 1m
        alertname: FeatureStoreDatasetDrift
        exp_alerts: []
      - eval_time: 3m
        alertname: FeatureStoreTrainingServingSkew
        exp_alerts:
          - exp_labels: {{model: churn, feature: amount}}
            exp_annotations:
              summary: "churn: amount served differs from offline in 5% of rows"
"""


@needs_promtool
def test_promtool_accepts_the_alert_rules():
    done = subprocess.run([PROMTOOL, "check", "rules", str(DEPLOY / "alerts.yml")], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


@needs_promtool
def test_monitor_alerts_fire_on_drift_and_skew_only(tmp_path):
    tests = tmp_path / "monitor_test.yml"
    tests.write_text(UNIT_TESTS.format(rules=json.dumps(str(DEPLOY / "alerts.yml"))))
    done = subprocess.run([PROMTOOL, "test", "rules", str(tests)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_dashboard_draws_every_monitor_gauge():
    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "featurestore.json").read_text())
    exprs = " ".join(t["expr"] for p in dashboard["panels"] for t in p.get("targets", []))
    for metric in ("featurestore_drift_score", "featurestore_drift_detected", "featurestore_dataset_drift",
                   "featurestore_skew_mismatch_ratio"):
        assert metric in exprs
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
