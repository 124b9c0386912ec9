"""Monitor runs: one window of a model's served rows judged against its version's training
set (drift) and recomputed offline (skew), stored in the registry.

Kind ``monitor_run``, named ``<model>/<n>`` (numbered per model): the model, the version
judged and the versions seen in the window, the window, the drift and skew results and
what triggered it (``manual`` or ``scheduled``). Runs are never changed once written;
``history`` lists them newest first. ``featurestore monitor run``, ``store.monitor``, the
scheduler and ``GET /monitoring/models/{name}`` all go through ``run_monitor``/``latest``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from registry import StoredObject

from featurestore.clock import parse_utc
from featurestore.errors import InputError, NotFoundError
from featurestore.models.records import ModelVersion
from featurestore.models.uri import DEFAULT_ALIAS, parse_uri
from featurestore.serving_log import OUTCOME, logged_features

from monitoring.drift import compare
from monitoring.settings import MonitorSettings, settings_for
from monitoring.skew import compare_log

__all__ = ["KIND", "MonitorResult", "history", "latest", "resolve_version", "run_monitor"]

KIND = "monitor_run"


@dataclass(frozen=True)
class MonitorResult:
    """What ``featurestore monitor run MODEL --json`` prints (``to_dict``): ``drift``,
    ``dataset_drift`` and ``skew`` are the pinned keys."""

    model: str
    version: int
    start: datetime
    end: datetime
    rows: int
    drift: list[dict[str, Any]]
    dataset_drift: bool
    drifted_share: float
    status: str
    skew: list[dict[str, Any]] = field(default_factory=list)
    versions_seen: dict[str, int] = field(default_factory=dict)
    trigger: str = "manual"
    run: int | None = None
    created_at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model, "version": self.version, "uri": f"{self.model}/{self.version}",
            "window": {"start": self.start.isoformat(), "end": self.end.isoformat()}, "rows": self.rows,
            "status": self.status, "dataset_drift": self.dataset_drift, "drifted_share": self.drifted_share,
            "drift": self.drift, "skew": self.skew, "versions_seen": self.versions_seen, "trigger": self.trigger,
            "run": self.run, "created_at": self.created_at.isoformat() if self.created_at else None,
        }

    @classmethod
    def from_object(cls, obj: StoredObject) -> MonitorResult:
        s = obj.spec
        return cls(model=s["model"], version=s["version"], start=datetime.fromisoformat(s["window"]["start"]),
                   end=datetime.fromisoformat(s["window"]["end"]), rows=s["rows"], drift=s["drift"],
                   dataset_drift=s["dataset_drift"], drifted_share=s["drifted_share"], status=s["status"],
                   skew=s["skew"], versions_seen=s["versions_seen"], trigger=s["trigger"],
                   run=int(obj.name.rsplit("/", 1)[1]), created_at=datetime.fromisoformat(s["created_at"]))


def resolve_version(store, uri: str) -> ModelVersion:
    """The version ``uri`` names; a bare model name is its champion, or its latest version
    when it has no champion (a model monitored before any alias is set)."""
    parsed = parse_uri(uri)
    bare = isinstance(uri, str) and "@" not in uri and "/" not in uri
    try:
        return store.models.get(parsed)
    except NotFoundError:
        if not (bare and parsed.alias == DEFAULT_ALIAS):
            raise
        versions = store.models.versions(parsed.name)
        if not versions:
            raise
        return versions[-1]


def run_monitor(store, uri: str, start: datetime | str | None = None, end: datetime | str | None = None, *,
                settings: MonitorSettings | None = None, rows: pa.Table | None = None,
                trigger: str = "manual", save: bool = True) -> MonitorResult:
    """Judge the served rows of ``uri``'s model in ``[start, end)`` (default: the settings'
    window up to now) against the version's profile; stored as a ``monitor_run``.

    ``rows`` replaces the serving log's rows (same columns). Drift and skew judge the
    same rows: those the judged version answered (failed requests carry no prediction)."""
    version = resolve_version(store, uri)
    settings = settings or settings_for(store.config, version.name)
    end = parse_utc(end, "monitor end") or datetime.fromtimestamp(store.clock(), timezone.utc)
    start = parse_utc(start, "monitor start") or end - settings.window
    if start >= end:
        raise InputError(f"monitor window: start {start.isoformat()} must be before end {end.isoformat()}")
    profile = store.models.profile(version.uri)
    if profile is None:
        raise InputError(f"model {version.uri} has no training profile to compare with: it was registered without "
                         "training_dataset=; register a version with its training set to monitor drift")
    if rows is None:
        rows = store.get_logs(version.name, start, end)
    seen: dict[str, int] = {}
    if "version" in rows.column_names:
        seen = {str(v): n for v, n in sorted(Counter(rows.column("version").to_pylist()).items(), key=str)}
        rows = rows.filter(pc.equal(rows.column("version"), version.version))
    if OUTCOME in rows.column_names:  # a failed request has no prediction to judge
        rows = rows.filter(pc.equal(rows.column(OUTCOME), "ok"))
    result = compare(profile, rows, settings.drift)
    skewed = _skew(store, version, rows)
    outcome = MonitorResult(
        model=version.name, version=version.version, start=start, end=end, rows=rows.num_rows,
        drift=[f.to_dict() for f in result.features], dataset_drift=result.dataset_drift,
        drifted_share=result.drifted_share, status=result.status, skew=skewed, versions_seen=seen,
        trigger=trigger, created_at=datetime.now(timezone.utc),
    )
    if not save:
        return outcome
    spec = {k: v for k, v in outcome.to_dict().items() if k not in ("run", "uri")}
    stored = store.registry.put_numbered(store.project, KIND, f"{version.name}/", spec,
                                         [("model_version", version.uri)])
    return MonitorResult.from_object(stored)


def _skew(store, version: ModelVersion, rows: pa.Table) -> list[dict[str, Any]]:
    """Each logged feature recomputed offline at its log time (monitoring/skew.py)."""
    if rows.num_rows == 0 or "log_time" not in rows.column_names or not logged_features(rows.schema):
        return []
    return [s.to_dict() for s in compare_log(store, rows, list(version.features)).values()]


def history(store, model: str | None = None, limit: int | None = None) -> list[MonitorResult]:
    """Stored runs (of ``model``, or of every model), newest first."""
    if model is not None:
        store.models.get_model(parse_uri(model).name)  # an unknown model names the known ones
        model = parse_uri(model).name
    objects = [o for o in store.registry.list(store.project, KIND) if model is None or o.spec["model"] == model]
    objects.sort(key=lambda o: (o.spec["created_at"], o.name), reverse=True)
    return [MonitorResult.from_object(o) for o in objects[:limit]]


def latest(store) -> dict[str, MonitorResult]:
    """The newest run of every monitored model (one registry read)."""
    found: dict[str, MonitorResult] = {}
    for result in reversed(history(store)):
        found[result.model] = result
    return found
