"""``store.models.rollouts``: a model's canary or shadow rollout, kept in the registry.

One registry object of kind ``rollout`` per model (name = the model's name). Every change
(start, a step, pause, resume, promote, rollback) is a new registry version of it, so
its registry history is the rollout's history; each version's ``event`` says when, what
was decided and the measured values behind it. A new rollout of the same model starts a
new ``rollout_id``; ``status`` shows the history of the current one only.

The rules kept here:
- ``stable`` is the model's ``champion`` when the rollout starts; the candidate is another
  ready version of the same model;
- one rollout per model runs (or is paused) at a time;
- ``weight`` is a percentage: canary sends that share of entity keys to the candidate,
  shadow mirrors that share of requests to it (its answers are logged, never returned);
- promotion moves ``champion`` to the candidate in the same transaction that records it,
  with the reason in the alias's history; a rollback sets the weight to 0 and keeps the
  failed check and its measured values (``failure``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from registry import ObjectSpec, StoredObject

from featurestore.clock import parse_duration
from featurestore.errors import ConfigError, InputError, NotFoundError
from featurestore.models.arguments import version_number
from featurestore.models.records import READY

__all__ = ["DEFAULT_CHECKS", "MODES", "PROMQL", "Rollout", "RolloutEvent", "Rollouts", "prometheus_url"]

MODES = ("canary", "shadow")
RUNNING, PAUSED, PROMOTED, ROLLED_BACK = "running", "paused", "promoted", "rolled_back"
ACTIVE = (RUNNING, PAUSED)
STABLE_ALIAS = "champion"

#: Limits of the analysis (docs/rollouts.md): a check left at None is not run.
DEFAULT_CHECKS: dict[str, float | None] = {
    "success_rate": 0.99,     # the candidate's share of answered requests, at least
    "p99_ms": None,           # the candidate's p99 latency in milliseconds, at most
    "p99_ratio": None,        # the candidate's p99 over stable's, at most
    "js_distance": 0.1,       # Jensen-Shannon distance of predictions to stable's, at most
    "null_rate": None,        # the candidate's share of null feature values, at most
}
#: The optional checks asked of a Prometheus server: a list of {name, query, min and/or max}.
PROMQL = "promql"
_PROMQL_KEYS = {"name", "query", "min", "max"}


@dataclass(frozen=True)
class RolloutEvent:
    """One entry of a rollout's history: when, what was decided, why, and the numbers."""

    at: datetime
    decision: str
    weight: int
    reason: str | None
    measured: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"at": self.at.isoformat(), "decision": self.decision, "weight": self.weight,
                "reason": self.reason, "measured": self.measured}


@dataclass(frozen=True)
class Rollout:
    """Where a model's rollout stands (one registry version of its ``rollout`` object)."""

    model: str
    rollout_id: str
    state: str
    mode: str
    stable: int
    candidate: int
    weight: int
    step_weight: int
    max_weight: int
    interval: float
    threshold: int
    min_requests: int
    checks: dict[str, float | None]
    failed_checks: int
    failure: dict[str, Any] | None
    revision: int
    history: tuple[RolloutEvent, ...] = ()

    @property
    def active(self) -> bool:
        return self.state in ACTIVE

    def settings(self) -> dict[str, Any]:
        return {"step_weight": self.step_weight, "max_weight": self.max_weight, "interval": self.interval,
                "threshold": self.threshold, "min_requests": self.min_requests, "checks": self.checks}

    def to_dict(self) -> dict[str, Any]:
        """What ``featurestore rollout status --json`` prints (the shape docs/rollouts.md pins)."""
        return {"state": self.state, "stable": self.stable, "candidate": self.candidate, "weight": self.weight,
                "history": [e.to_dict() for e in self.history], "model": self.model, "mode": self.mode,
                "failed_checks": self.failed_checks, "failure": self.failure, "settings": self.settings()}


class Rollouts:
    """Start, steer and read model rollouts (``store.models.rollouts``)."""

    def __init__(self, models):
        self._models = models
        self._store = models._store

    def start(self, name: str, candidate: int | str, mode: str = "canary", step_weight: int = 10,
              max_weight: int = 50, interval: Any = 60, threshold: int = 3, min_requests: int = 100,
              checks: dict[str, float | None] | None = None, reason: str | None = None) -> Rollout:
        """Start sending ``step_weight`` percent of ``name``'s traffic to version ``candidate``
        (``mode="shadow"``: mirroring it), judged every ``interval``; see docs/rollouts.md."""
        if mode not in MODES:
            raise InputError(f"rollout mode {mode!r} is not one of {', '.join(MODES)}")
        step, top = _percent(step_weight, "step_weight", low=1), _percent(max_weight, "max_weight", low=1)
        if step > top:
            raise InputError(f"step_weight {step} is above max_weight {top}; lower step_weight or raise max_weight")
        try:
            seconds = parse_duration(interval, "interval").total_seconds()
        except ConfigError as exc:  # a caller's value, not the server's setup: a 422 over HTTP, not a 500
            raise InputError(str(exc)) from None
        limits = _checks(checks)
        if limits.get(PROMQL) and not prometheus_url(self._store.config):
            raise InputError("the rollout has PromQL checks but featurestore.yaml names no Prometheus to ask them; "
                             "set monitoring.prometheus_url (http://prometheus:9090)")
        spec = {
            "model": name, "rollout_id": uuid.uuid4().hex, "state": RUNNING, "mode": mode, "weight": step,
            "step_weight": step, "max_weight": top, "interval": seconds,
            "threshold": _positive(threshold, "threshold"), "min_requests": _positive(min_requests, "min_requests"),
            "checks": limits, "failed_checks": 0, "failure": None,
        }
        number = version_number(candidate)
        with self._models._transaction() as tx:
            self._models._model(name, tx)
            current = tx.get("rollout", name)
            if current is not None and current.spec["state"] in ACTIVE:
                raise InputError(f"model {name!r} already has a {current.spec['state']} rollout of version "
                                 f"{current.spec['candidate']}; promote or roll it back first "
                                 f"(featurestore rollout promote|rollback {name})")
            champion = tx.get("model_alias", f"{name}@{STABLE_ALIAS}")
            if champion is None:
                raise InputError(f"model {name!r} has no {STABLE_ALIAS} alias, so there is no stable version to "
                                 f"roll out from; set one: featurestore models alias {name} {STABLE_ALIAS} N")
            target = tx.get("model_version", f"{name}/{number}")
            if target is None or target.spec.get("status") != READY:
                state = "does not exist" if target is None else f"is {target.spec.get('status')}"
                raise InputError(f"candidate {name}/{number} {state}; a rollout needs a ready version")
            if number == champion.spec["version"]:
                raise InputError(f"{name}/{number} is already the {STABLE_ALIAS}; name another version as candidate")
            spec.update(stable=champion.spec["version"], candidate=number,
                        event=_event("started", step, reason, {}))
            tx.put(_object(spec))
        return self.get(name)

    def get(self, name: str) -> Rollout:
        """The model's current (or last) rollout with its history."""
        history = self._store.registry.history(self._store.project, "rollout", name)
        if not history:
            self._models._model(name)
            raise NotFoundError("rollout", name, hint=f"start one: featurestore rollout start {name} --candidate N")
        latest = history[-1]
        current = [o for o in history if o.spec["rollout_id"] == latest.spec["rollout_id"]]
        return rollout_record(latest, current)

    def list(self) -> list[Rollout]:
        """The current (or last) rollout of every model that had one."""
        return [self.get(o.name) for o in self._store.registry.list(self._store.project, "rollout")]

    def active(self) -> list[Rollout]:
        """Rollouts that route traffic now (running or paused)."""
        return [r for r in self.list() if r.active]

    def pause(self, name: str, reason: str | None = None) -> Rollout:
        """Keep the weight, stop the analysis and its steps until ``resume``."""
        return self._move(name, "paused", {RUNNING}, reason, state=PAUSED)

    def resume(self, name: str, reason: str | None = None) -> Rollout:
        return self._move(name, "resumed", {PAUSED}, reason, state=RUNNING)

    def set_weight(self, name: str, weight: int, reason: str | None = None, measured: dict[str, Any] | None = None,
                   expected_revision: int | None = None) -> Rollout:
        """Route ``weight`` percent to the candidate (the controller's step; also by hand)."""
        return self._move(name, "step", set(ACTIVE), reason, measured, expected_revision=expected_revision,
                          weight=_percent(weight, "weight"))

    def record(self, name: str, decision: str, measured: dict[str, Any], failed: bool, reason: str | None = None,
               expected_revision: int | None = None) -> Rollout:
        """Keep an analysis that neither steps nor ends the rollout (inconclusive, or a failed
        interval below the threshold); a failed one counts towards ``threshold``."""
        return self._move(name, decision, {RUNNING}, reason, measured, expected_revision=expected_revision,
                          count_failure=failed)

    def promote(self, name: str, reason: str | None = None, measured: dict[str, Any] | None = None,
                expected_revision: int | None = None) -> Rollout:
        """Move ``champion`` to the candidate (the alias history says why) and end the rollout."""
        why = reason or "rollout promoted"

        def also(tx, spec):
            previous = tx.get("model_alias", f"{name}@{STABLE_ALIAS}")
            tx.put(ObjectSpec("model_alias", f"{name}@{STABLE_ALIAS}", {
                "model": name, "alias": STABLE_ALIAS, "version": spec["candidate"],
                "previous": previous.spec["version"] if previous else None,
                "reason": f"rollout {spec['rollout_id'][:8]}: {why}"}, (("model_version", f"{name}/{spec['candidate']}"),)))

        return self._move(name, "promoted", set(ACTIVE), why, measured, also=also,
                          expected_revision=expected_revision, state=PROMOTED, weight=100)

    def rollback(self, name: str, reason: str | None = None, failure: dict[str, Any] | None = None,
                 measured: dict[str, Any] | None = None, expected_revision: int | None = None) -> Rollout:
        """Send no more traffic to the candidate and mark it failed (``failure``: the check and
        the measured values that failed it; by hand: the reason)."""
        failure = failure or {"check": "manual", "reason": reason or "rolled back by hand"}
        return self._move(name, "rolled_back", set(ACTIVE), reason or failure.get("check"), measured,
                          expected_revision=expected_revision, state=ROLLED_BACK, weight=0, failure=failure)

    # -- plumbing ----------------------------------------------------------------------

    def _move(self, name, decision, allowed, reason, measured=None, also=None, expected_revision=None,
              count_failure=False, **changes) -> Rollout:
        with self._models._transaction() as tx:
            self._models._model(name, tx)
            current = tx.get("rollout", name)
            if current is None:
                raise NotFoundError("rollout", name, hint=f"start one: featurestore rollout start {name} --candidate N")
            spec = dict(current.spec)
            if spec["state"] not in allowed:
                raise InputError(f"the rollout of {name!r} is {spec['state']}; it cannot be {decision} "
                                 f"(allowed when {' or '.join(sorted(allowed))})")
            if expected_revision is not None and current.version != expected_revision:
                raise InputError(f"the rollout of {name!r} changed while it was analysed; the decision is dropped")
            spec.update(changes)
            spec["failed_checks"] += 1 if count_failure else 0
            spec["event"] = _event(decision, spec["weight"], reason, measured or {})
            if also is not None:
                also(tx, spec)
            tx.put(_object(spec))
        return self.get(name)


def rollout_record(obj: StoredObject, history: list[StoredObject]) -> Rollout:
    s = obj.spec
    return Rollout(
        model=s["model"], rollout_id=s["rollout_id"], state=s["state"], mode=s["mode"], stable=s["stable"],
        candidate=s["candidate"], weight=s["weight"], step_weight=s["step_weight"], max_weight=s["max_weight"],
        interval=s["interval"], threshold=s["threshold"], min_requests=s["min_requests"], checks=s["checks"],
        failed_checks=s["failed_checks"], failure=s.get("failure"), revision=obj.version,
        history=tuple(_history_entry(o) for o in history),
    )


def _history_entry(obj: StoredObject) -> RolloutEvent:
    e = obj.spec["event"]
    return RolloutEvent(at=datetime.fromisoformat(e["at"]), decision=e["decision"], weight=e["weight"],
                        reason=e.get("reason"), measured=e.get("measured", {}))


def _object(spec: dict[str, Any]) -> ObjectSpec:
    # A running or paused rollout pins both versions against archiving; a finished one lets go.
    name = spec["model"]
    versions = [("model_version", f"{name}/{spec[k]}") for k in ("stable", "candidate")]
    return ObjectSpec("rollout", name, spec, [("model", name), *(versions if spec["state"] in ACTIVE else ())])


def _event(decision: str, weight: int, reason: str | None, measured: dict[str, Any]) -> dict[str, Any]:
    return {"at": datetime.now(timezone.utc).isoformat(), "decision": decision, "weight": weight,
            "reason": reason, "measured": measured}


def _percent(value: Any, what: str, low: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= 100:
        raise InputError(f"{what} must be a whole percentage from {low} to 100, got {value!r}")
    return value


def _positive(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InputError(f"{what} must be a whole number of at least 1, got {value!r}")
    return value


def prometheus_url(config) -> str | None:
    """``monitoring.prometheus_url`` of featurestore.yaml: the Prometheus the PromQL checks ask."""
    section = config.extra.get("monitoring")
    url = section.get("prometheus_url") if isinstance(section, dict) else None
    return str(url).rstrip("/") if url else None


def _checks(checks: dict[str, Any] | None) -> dict[str, Any]:
    checks = dict(checks or {})
    promql = checks.pop(PROMQL, None)
    unknown = sorted(set(checks) - set(DEFAULT_CHECKS))
    if unknown:
        raise InputError(f"unknown rollout check(s) {', '.join(unknown)}; known: {', '.join(DEFAULT_CHECKS)}, "
                         f"{PROMQL}")
    merged: dict[str, Any] = {**DEFAULT_CHECKS, **checks}
    for key, limit in merged.items():
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, (int, float)) or limit < 0):
            raise InputError(f"check {key} needs a number of at least 0 (or null to skip it), got {limit!r}")
    if promql:
        merged[PROMQL] = _promql(promql)
    return merged


def _promql(value: Any) -> list[dict[str, Any]]:
    """The PromQL checks as stored: each with a name, its query and its min and/or max."""
    items = [value] if isinstance(value, dict) else value
    if not isinstance(items, list):
        raise InputError(f"check {PROMQL} takes a list of {{query, max or min, name}}, got {value!r}")
    out = []
    for i, item in enumerate(items):
        where = f"{PROMQL} check {i + 1}"
        if not isinstance(item, dict) or set(item) - _PROMQL_KEYS:
            raise InputError(f"{where} must be a mapping of {', '.join(sorted(_PROMQL_KEYS))}, got {item!r}")
        query = item.get("query")
        if not isinstance(query, str) or not query.strip():
            raise InputError(f"{where} needs a 'query': a PromQL expression giving one number, e.g. "
                             "histogram_quantile(0.99, ...{model=\"{model}\",version=\"{candidate}\"}...)")
        bounds = {k: item[k] for k in ("min", "max") if item.get(k) is not None}
        if not bounds or any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in bounds.values()):
            raise InputError(f"{where} needs a numeric 'max' (the value must be at most it) and/or 'min'")
        name = str(item.get("name") or (PROMQL if len(items) == 1 else f"{PROMQL}_{i + 1}"))
        out.append({"name": name, "query": query, **bounds})
    names = [c["name"] for c in out]
    if len(set(names)) != len(names):
        raise InputError(f"{PROMQL} checks need different names, got {names}")
    return out
