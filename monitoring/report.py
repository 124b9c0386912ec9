"""The monitor report: one self-contained HTML page for a monitor run.

A summary table (feature, test, statistic, threshold, verdict, nulls, values outside
training), then per feature the reference (training) and current (served) distributions
drawn one over the other, as inline SVG made by matplotlib, and the skew table. No
script, stylesheet, font or image is fetched: the page opens offline.

matplotlib is optional (``pip install 'featurestore[monitoring]'``) and imported here only.
"""

from __future__ import annotations

import html
import io
from collections.abc import Mapping
from typing import Any

from featurestore.errors import ConfigError, NotFoundError

from monitoring.runs import MonitorResult, history, resolve_version, run_monitor

__all__ = ["model_report", "render_report"]

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #ccc;padding:4px 8px;text-align:left}
th{background:#f3f3f3}.drift{color:#b00020;font-weight:bold}.ok{color:#1b5e20}.none{color:#777}
section.feature{margin:2em 0;border-top:1px solid #ddd}figure{margin:0}
"""


def model_report(store, model: str) -> str:
    """The report of ``model``'s latest monitor run (one is run now when it has none)."""
    version = resolve_version(store, model)
    runs = [r for r in history(store, version.name, limit=50) if r.version == version.version]
    result = runs[0] if runs else run_monitor(store, version.uri)
    profile = store.models.profile(version.uri)
    if profile is None:
        raise NotFoundError("training profile of model", version.uri,
                            hint="register the version with training_dataset= to monitor it")
    return render_report(result, profile)


def render_report(result: MonitorResult, profile: Mapping[str, Any]) -> str:
    figure_class = _figure_class()
    rows = "".join(_summary_row(d) for d in result.drift)
    sections = "".join(_feature_section(figure_class, d, profile["columns"][d["feature"]]) for d in result.drift
                       if d["feature"] in profile["columns"])
    skew = "".join(f"<tr><td>{_e(s['feature'])}</td><td>{s['mismatch_ratio']:.2%}</td><td>{s['compared']}</td></tr>"
                   for s in result.skew) or "<tr><td colspan=3 class=none>no skew results in this run</td></tr>"
    title = f"Monitor report: {result.model}/{result.version}"
    verdict = ('<span class=drift>dataset drift</span>' if result.dataset_drift else
               '<span class=ok>no dataset drift</span>')
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title><style>{_STYLE}</style></head>
<body>
<h1>{_e(title)}</h1>
<p>Window {result.start:%Y-%m-%d %H:%M} .. {result.end:%Y-%m-%d %H:%M} UTC, {result.rows} served row(s),
run {result.run} ({_e(result.trigger)}): {verdict}, {result.drifted_share:.0%} of the features drifted
(status: {_e(result.status)}).</p>
<h2>Summary</h2>
<table id="summary"><tr><th>feature</th><th>test</th><th>statistic</th><th>threshold</th><th>verdict</th>
<th>null rate (training / served)</th><th>outside training</th></tr>{rows}</table>
<h2>Distributions</h2>{sections}
<h2>Skew</h2>
<table id="skew"><tr><th>feature</th><th>mismatch ratio</th><th>compared</th></tr>{skew}</table>
</body></html>
"""


def _summary_row(d: Mapping[str, Any]) -> str:
    return (f"<tr><td><a href='#f-{_e(d['feature'])}'>{_e(d['feature'])}</a></td><td>{_e(d['method'])}</td>"
            f"<td>{_number(d['statistic'])}</td><td>{d['threshold']:g}</td><td>{_verdict(d)}</td>"
            f"<td>{d['reference_null_rate']:.1%} / {d['current_null_rate']:.1%}"
            f"{' <span class=drift>jump</span>' if d['null_rate_jump'] else ''}</td>"
            f"<td>{d['outside_training']:.1%}</td></tr>")


def _feature_section(figure_class, d: Mapping[str, Any], reference: Mapping[str, Any]) -> str:
    return (f"<section class=feature id='f-{_e(d['feature'])}'><h3>{_e(d['feature'])}: {_verdict(d)}</h3>"
            f"<p>{_e(d['method'])} statistic {_number(d['statistic'])}, threshold {d['threshold']:g}, "
            f"{d['rows']} served value(s)</p><figure>{_plot(figure_class, d, reference)}</figure></section>")


def _plot(figure_class, d: Mapping[str, Any], reference: Mapping[str, Any]) -> str:
    figure = figure_class(figsize=(7, 2.8))
    axes = figure.subplots()
    current = d["current"]
    if "counts" in current:  # numeric: shares per reference bin
        edges = reference["histogram"]["edges"]
        ref_counts, cur_counts = reference["histogram"]["counts"], current["counts"]
        widths = [b - a for a, b in zip(edges, edges[1:])]
        axes.bar(edges[:-1], _shares(ref_counts), widths, align="edge", alpha=0.5, label="training")
        axes.bar(edges[:-1], _shares(cur_counts, current["below"] + current["above"]), widths, align="edge", alpha=0.5, label="served")
        axes.set_xlabel(d["feature"])
    else:  # categories: the most frequent of both, side by side
        ref, cur = reference.get("frequencies") or {}, current.get("frequencies") or {}
        keys = list(dict.fromkeys([*_top(ref), *_top(cur)]))
        ref_total, cur_total = max(sum(ref.values()), 1), max(sum(cur.values()), 1)
        x = range(len(keys))
        axes.bar([i - 0.2 for i in x], [ref.get(k, 0) / ref_total for k in keys], 0.4, label="training")
        axes.bar([i + 0.2 for i in x], [cur.get(k, 0) / cur_total for k in keys], 0.4, label="served")
        axes.set_xticks(list(x), [str(k)[:12] for k in keys], rotation=30, fontsize=8)
    axes.set_ylabel("share")
    axes.legend()
    figure.tight_layout()
    out = io.StringIO()
    figure.savefig(out, format="svg", metadata={"Date": None})  # no timestamp: same run, same page
    svg = out.getvalue()
    return svg[svg.index("<svg"):]  # drop the XML prolog and doctype: the SVG sits inline


def _shares(counts, outside: int = 0) -> list[float]:
    total = sum(counts) + outside or 1
    return [c / total for c in counts]


def _top(frequencies: Mapping[str, int], n: int = 15) -> list[str]:
    return sorted(frequencies, key=lambda k: (-frequencies[k], k))[:n]


def _verdict(d: Mapping[str, Any]) -> str:
    if d["status"] == "not_enough_data":
        return "<span class=none>not enough data</span>"
    return "<span class=drift>drift</span>" if d["drifted"] else "<span class=ok>no drift</span>"


def _number(value) -> str:
    return "-" if value is None else f"{value:.4g}"


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _figure_class():
    """matplotlib's ``Figure``: figures made without pyplot keep no global state, so
    server threads can draw at once."""
    try:
        import matplotlib
        from matplotlib.figure import Figure
    except ImportError:
        raise ConfigError("the monitor report draws with matplotlib: pip install 'featurestore[monitoring]'") from None
    matplotlib.rcParams["svg.fonttype"] = "path"  # text as shapes: no font to fetch
    matplotlib.rcParams["svg.hashsalt"] = "featurestore"  # stable ids: the same run gives the same page
    return Figure
