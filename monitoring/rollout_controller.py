"""The rollout controller: each running rollout whose interval is over is judged and moved.

``run_rollouts(store)`` is one pass under the lock ``rollouts`` (one controller at a time
however many schedulers run). ``featurestore scheduler`` runs it as one of its tasks
(``rollout_task``: every second, one pass at a time, on the scheduler's task thread beside
the model monitors), so it starts, stops and shuts down with the scheduler. All its state
is in the registry: the interval starts at the rollout's last history entry, so a
controller that dies mid-rollout leaves nothing behind and the next one continues; a
killed holder's lock is taken over at once (``featurestore.jobs.locks``).

Decisions (docs/rollouts.md): a passing interval steps the weight by ``step_weight`` up to
``max_weight``, and a pass at ``max_weight`` promotes; a failed one counts, and the
``threshold``-th rolls back with the failed checks and their measured values; an
inconclusive one is recorded and changes nothing. Every decision is written only if the
rollout did not change meanwhile (a pause or a promotion by hand wins).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from typing import Any

from featurestore.errors import InputError
from featurestore.jobs.locks import owner_id
from featurestore.jobs.schedule import Schedule
from featurestore.jobs.scheduler import ScheduledTask
from featurestore.models.rollouts import PROMQL, prometheus_url
from monitoring.rollout_analysis import FAILED, PASSED, analyze
from monitoring.rollout_promql import check_promql, with_promql

__all__ = ["EVERY", "LOCK", "decide", "rollout_task", "run_rollouts"]

log = logging.getLogger("featurestore.rollouts")

LOCK = "rollouts"
#: How often the scheduler looks for a rollout whose interval is over: a pass that finds
#: none reads the registry once and decides nothing.
EVERY = Schedule.parse("1s", "rollout controller")


def run_rollouts(store, now: datetime | None = None, owner: str | None = None, ttl: float = 60.0) -> list[dict]:
    """Judge every running rollout whose interval is over; the decisions taken. Nothing is
    done (and [] returned) while another controller holds the lock."""
    owner = owner or owner_id("rollouts")
    if store.locks.acquire(LOCK, owner, ttl).owner != owner:
        return []
    try:
        now = now or datetime.now(timezone.utc)
        decisions = []
        for rollout in store.models.rollouts.active():
            if rollout.state != "running":
                continue
            since = rollout.history[-1].at
            if now - since < timedelta(seconds=rollout.interval):
                continue
            decision = decide(store, rollout, since, now)
            if decision is not None:
                decisions.append(decision)
        return decisions
    finally:
        store.locks.release(LOCK, owner)


def rollout_task(store) -> ScheduledTask:
    """The controller as a ``featurestore scheduler`` task: ``run_rollouts`` every second,
    as this scheduler's one lock owner."""
    owner = owner_id("rollouts")
    return ScheduledTask(EVERY, lambda _fire: run_rollouts(store, owner=owner))


def decide(store, rollout, start: datetime, end: datetime) -> dict[str, Any] | None:
    """Judge ``rollout`` on the serving log of ``[start, end)`` (and its PromQL checks at
    ``end``) and record the decision."""
    analysis = analyze(store.get_logs(rollout.model, start, end), rollout)
    if rollout.checks.get(PROMQL):
        analysis = with_promql(analysis, check_promql(prometheus_url(store.config), rollout, end))
    rollouts, name, revision = store.models.rollouts, rollout.model, rollout.revision
    measured = analysis.to_dict()
    try:
        if analysis.verdict == PASSED and rollout.weight >= rollout.max_weight:
            outcome = rollouts.promote(name, reason=f"passed at {rollout.weight}%: {analysis.reason}",
                                       measured=measured, expected_revision=revision)
        elif analysis.verdict == PASSED:
            weight = min(rollout.weight + rollout.step_weight, rollout.max_weight)
            outcome = rollouts.set_weight(name, weight, reason=analysis.reason, measured=measured,
                                          expected_revision=revision)
        elif analysis.verdict == FAILED and rollout.failed_checks + 1 >= rollout.threshold:
            failure = {**analysis.failures[0], "failures": analysis.failures, "failed_intervals":
                       rollout.failed_checks + 1}
            outcome = rollouts.rollback(name, reason=analysis.reason, failure=failure, measured=measured,
                                        expected_revision=revision)
        else:
            outcome = rollouts.record(name, analysis.verdict, measured, failed=analysis.verdict == FAILED,
                                      reason=analysis.reason, expected_revision=revision)
    except InputError as exc:  # changed by hand (or another controller) while it was judged
        log.info("rollout of %s: decision dropped: %s", name, exc)
        return None
    entry = outcome.history[-1]
    log.info("rollout of %s: %s at %d%% (%s)", name, entry.decision, entry.weight, analysis.reason)
    return {"model": name, **entry.to_dict()}
