"""The report page: one self-contained HTML file, a plot per column (numbers and
categories), escaped names, and the skew table."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from html.parser import HTMLParser

import numpy as np
import pyarrow as pa

from featurestore.models.profile import profile_table
from monitoring.drift import compare
from monitoring.report import render_report
from monitoring.runs import MonitorResult


class _Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)


def test_report_draws_numbers_and_categories_and_lists_skew():
    rng = np.random.default_rng(3)
    reference = profile_table(pa.table({"amount": rng.normal(size=400), "<city>": rng.choice(["a", "b", "c"], 400)}),
                              ["amount", "<city>"])
    drift = compare(reference, pa.table({"amount": rng.normal(loc=1, size=200), "<city>": ["a"] * 200}))
    result = MonitorResult("churn", 2, datetime(2024, 5, 1, tzinfo=timezone.utc), datetime(2024, 5, 2, tzinfo=timezone.utc),
                           200, [f.to_dict() for f in drift.features], drift.dataset_drift, drift.drifted_share,
                           drift.status, skew=[{"feature": "amount", "mismatch_ratio": 0.25, "compared": 200}], run=7)
    page = render_report(result, reference)
    parser = _Tags()
    parser.feed(page)
    assert parser.tags.count("svg") == 2 and "script" not in parser.tags and "link" not in parser.tags
    assert "&lt;city&gt;" in page and "<city>" not in page
    assert re.search(r"<td>amount</td><td>25\.00%</td><td>200</td>", page)
    assert page.count("class=drift>drift</span>") >= 2 and "churn/2" in page
    assert render_report(result, reference) == page  # the same run gives the same page
