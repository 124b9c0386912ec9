"""``InlineGate``: when a model version's calls may skip the thread hop.

A model call runs on ``serving.model_runner``'s threads so that its timeout can answer
504 while it runs on. The hop costs tens of microseconds a call, more under load (the
call's thread waits for the GIL the busy event loop holds), and for a model that
answers in a few microseconds that is most of its cost. A hand-written endpoint calls
the model on the event loop. So each served version is watched:

- it starts on the threads, and each call's cost is measured where it ran;
- after ``INLINE_AFTER`` calls in a row within the budget it is called inline, on the
  event loop, with no hop (and no timeout: nothing can interrupt a call on the loop);
- an inline call over the budget sends it back to the threads at once, and it must then
  make twice as many calls in a row within the budget as last time before it goes inline
  again (``needed`` doubles, up to ``MAX_NEEDED``); a long clean run inline halves it.

A call is within the budget when the CPU time of the thread that ran it (``thread_time``:
the model's own work, not the waits for the GIL that a busy server adds to its wall time)
is at most the budget and its wall time (a model that sleeps or waits on I/O uses no
CPU) at most ``WAIT_FACTOR`` budgets. A loaded machine now and then stalls any call for
milliseconds (it takes the core away, or a virtual machine's host does, which even counts
as the thread's CPU time): so one call over the budget in ``INLINE_AFTER`` is forgiven (the
budget bounds a p98, not the maximum), a second one is not, and no call may take more than
``MAX_BUDGET_SHARE`` of the model's timeout. The budget is ``serving.inline_call_budget_ms``
(per model in ``serving.inline_call_budgets_ms``), itself at most that share of the
timeout; 0 keeps a model on the threads.

What this trades: a version that has been fast for ``INLINE_AFTER`` calls can still hang
on the next one (an input it never saw, a lock, a remote call), and inline that call
holds up every request of the worker until it returns; its own request is then answered
504 (it overran its timeout), the version goes back to the threads, and it is logged.
The budget makes a hang unlikely, not impossible; a model that may wait on anything
should be served with budget 0.
"""

from __future__ import annotations

import resource
import time

__all__ = ["INLINE_AFTER", "InlineGate", "MAX_BUDGET_SHARE", "Timed", "WAIT_FACTOR"]

INLINE_AFTER = 50            # calls in a row within the budget before a version runs inline
MAX_NEEDED = INLINE_AFTER << 10
MAX_BUDGET_SHARE = 0.1       # the budget is at most this share of the model's timeout
WAIT_FACTOR = 5              # a call's wall time may be this many budgets (GIL, a busy core)
_CLEAN_RUN = 20              # inline calls in a row, per call needed, that halve ``needed``

_cpu, _wall = time.thread_time, time.perf_counter
_THREAD = getattr(resource, "RUSAGE_THREAD", None)  # Linux


def _preemptions() -> int:
    """Times the OS took the core from this thread (involuntary context switches); 0 where unknown."""
    return resource.getrusage(_THREAD).ru_nivcsw if _THREAD is not None else 0


class InlineGate:
    """One served version's mode (``inline`` or on the threads) and the evidence for it.
    Used from the event loop thread only (a threaded call's costs are recorded there)."""

    __slots__ = ("budget", "wait_budget", "wall_limit", "inline", "streak", "needed", "fallbacks", "calls",
                 "last_over")

    def __init__(self, budget: float, timeout: float):
        """``budget``: seconds of CPU a call may take to run inline (0: never); ``timeout``:
        the model's timeout, which bounds the budget."""
        self.wall_limit = timeout * MAX_BUDGET_SHARE
        self.budget = min(budget, self.wall_limit) if budget > 0 else 0.0
        self.wait_budget = self.budget * WAIT_FACTOR
        self.inline = False
        self.streak = 0               # calls in a row within the budget (on threads or inline)
        self.needed = INLINE_AFTER    # of them on the threads before going inline
        self.fallbacks = 0            # times an inline call overran the budget
        self.calls = 0                # calls judged
        self.last_over = -INLINE_AFTER  # the number of the last call over the budget

    def within(self, cpu: float, wall: float, preempted: bool = False) -> bool:
        """Whether a call that took ``cpu`` and ``wall`` seconds counts as within the budget;
        ``preempted``: the OS took the core from its thread meanwhile (its wall time is the machine's)."""
        self.calls += 1
        if cpu <= self.budget and (wall <= self.wait_budget or preempted and wall <= self.wall_limit):
            return True
        if wall > self.wall_limit:
            return False
        forgiven = self.calls - self.last_over > INLINE_AFTER  # the first over the budget in INLINE_AFTER calls
        self.last_over = self.calls
        return forgiven

    def threaded(self, cpu: float | None, wall: float | None, preempted: bool = False) -> bool:
        """Record a call made on the threads (None: it timed out); True when the version
        goes inline from its next call. A call that started before the version went
        inline is not counted: inline calls are judged by themselves."""
        if not self.budget or self.inline:
            return False
        if cpu is None or wall is None or not self.within(cpu, wall, preempted):
            self.streak = 0
            return False
        self.streak += 1
        if self.streak < self.needed:
            return False
        self.inline, self.streak = True, 0
        return True

    def inlined(self, cpu: float, wall: float, preempted: bool = False) -> bool:
        """Record a call made inline; True when it overran and the version goes back to the threads."""
        if self.within(cpu, wall, preempted):
            self.streak += 1
            if self.streak >= self.needed * _CLEAN_RUN and self.needed > INLINE_AFTER:
                self.needed //= 2
                self.streak = 0
            return False
        self.inline, self.streak = False, 0
        self.fallbacks += 1
        self.needed = min(self.needed * 2, MAX_NEEDED)
        return True


class Timed:
    """A call wrapped to measure, in whichever thread runs it, its CPU and wall time and
    whether the OS took the core from the thread meanwhile (None until it returned).

    A call whose wall time is at most ``budget`` used at most that much CPU, and
    ``InlineGate`` counts it within the budget whatever else happened: its CPU time and
    context switches are not read again (two system calls a call), and its ``cpu`` is
    its wall time, the bound."""

    __slots__ = ("function", "budget", "cpu", "wall", "preempted")

    def __init__(self, function, budget: float = 0.0):
        self.function, self.budget, self.cpu, self.wall, self.preempted = function, budget, None, None, False

    def __call__(self, argument):
        switches, cpu, wall = _preemptions(), _cpu(), _wall()
        try:
            return self.function(argument)
        finally:
            wall = _wall() - wall
            if wall <= self.budget:
                cpu = wall
            else:
                cpu = _cpu() - cpu
                self.preempted = _preemptions() != switches
            self.wall, self.cpu = wall, cpu  # cpu last: set, the others are
