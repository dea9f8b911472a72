"""A simulated target for engine tests, a loop that drives ``decide`` against it, and
shorthands for hand-made observations (``role``, ``at``).

Instances added by a scale-up become ready after a chosen number of ticks (never, if failing) and
available once ready for ``min_ready`` seconds. A scale-down removes instances at once, ready ones
first (the worst case for availability), so the slot's ready count drops on the same tick.
Smoke checks a decision asks for pass unless ``smoke_passes`` is False; their result is in the
next observation's ``checks``, as the reconcile loop hands it over. Analyses a decision asks for
start as the reconcile loop starts them (idempotent per key: a second start of a running key is
the same run) and decide after the ticks ``analysis_outcome(key, request)`` says, with the verdict
it says; a stopped one passes. Their verdicts are in the next observation's ``analysis``.
Experiment slots (``Decision.experiment``, the whole set wanted) are started, resized and removed
as the reconcile loop does, and shown in the next observation's ``experiment``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field

from strategies.engine import Decision, Observation, RoleState, decide

NEVER = 10**9
REASONS = {
    "pass": "Score 100 >= 95: the canary is as good as the baseline.",
    "fail": "errors: the canary's error rate 50% is clearly worse than the baseline's 0%.",
    "inconclusive": "errors: Not enough data yet: canary 4 of the 50 requests needed per side.",
    "running": "Measuring.",
}


@dataclass
class Instance:
    ready_tick: int
    failing: bool = False
    ready_since: float | None = None


@dataclass
class Slot:
    version: str | None
    desired: int = 0
    instances: list[Instance] = field(default_factory=list)


class Fleet:
    def __init__(
        self,
        *,
        stable: int,
        min_ready: float = 0.0,
        delay: Callable[[], int] = lambda: 1,
        failing: bool = False,
        stable_version: str | None = "1.0",
        smoke_passes: bool = True,
        analysis_outcome: Callable[[str, dict], tuple[int, str]] = lambda key, request: (2, "pass"),
    ):
        self.tick = 0
        self.now = 1_000.0
        self.min_ready = min_ready
        self.delay = delay
        self.failing = failing  # new canary instances never become ready
        self.slots = {
            "stable": Slot(stable_version if stable else None),
            "canary": Slot("2.0"),
        }
        self.weights: dict[str, int] | None | str = "unset"
        self.preview = False
        self.rules: dict | None = None
        self.smoke_passes = smoke_passes
        self.smoke_runs = 0
        self.checks: dict = {}
        self.analysis_outcome = analysis_outcome
        self.analyses: dict[str, dict] = {}  # key -> what the observation shows
        self.analysis_due: dict[str, tuple[int, str]] = {}  # key -> (tick it decides, verdict)
        self.analysis_starts: list[str] = []  # every start asked for, in order
        self.analysis_stops: list[str] = []
        self.experiment: dict[str, Slot] = {}  # experiment slots by key
        self.experiment_failing = False  # new experiment canary instances never become ready
        self.slots["stable"].desired = stable
        self.slots["stable"].instances = [Instance(0, ready_since=0.0) for _ in range(stable)]

    def role(self, name: str) -> RoleState:
        slot = self.slots[name] if name in self.slots else self.experiment[name]
        ready = [i for i in slot.instances if i.ready_since is not None]
        available = [i for i in ready if self.now - i.ready_since >= self.min_ready]
        failed = sum(1 for i in slot.instances if i.failing and self.tick >= i.ready_tick)
        return RoleState(slot.version, slot.desired, len(ready), len(available), failed)

    def observe(self) -> Observation:
        return Observation(
            now=self.now,
            stable=self.role("stable"),
            canary=self.role("canary"),
            checks=dict(self.checks),
            analysis={key: dict(value) for key, value in self.analyses.items()},
            experiment={key: self.role(key) for key in self.experiment},
        )

    def apply(self, decision: Decision) -> None:
        for name, replicas in decision.scale.items():
            slot = self.slots[name]
            slot.desired = replicas
            slot.instances.sort(key=lambda i: i.ready_since is None)  # ready ones first
            while len(slot.instances) > replicas:
                slot.instances.pop(0)
            while len(slot.instances) < replicas:
                delay = 1 if self.failing and name == "canary" else self.delay()
                failing = self.failing and name == "canary"
                slot.instances.append(Instance(self.tick + delay, failing=failing))
        wanted = decision.experiment or {}
        for key in [k for k in self.experiment if k not in wanted]:
            del self.experiment[key]
        for key, want in wanted.items():
            version = self.slots[want["release"]].version
            slot = self.experiment.setdefault(key, Slot(version))
            failing = self.experiment_failing and want["release"] == "canary"
            while len(slot.instances) < want["replicas"]:
                slot.instances.append(Instance(self.tick + self.delay(), failing=failing))
            del slot.instances[want["replicas"] :]
            slot.desired = want["replicas"]
        if decision.route:
            self.weights = decision.weights
            self.preview, self.rules = decision.preview, decision.rules
        for request in decision.start_analysis or []:
            key = request["key"]
            self.analysis_starts.append(key)
            if key in self.analyses:
                continue  # started before: running, it is the same run; finished, it stays so
            ticks, verdict = self.analysis_outcome(key, request)
            self.analyses[key] = {
                "decision": "running",
                "reason": "Measuring.",
                "template": request["template"],
                "step_index": request.get("step_index"),
                "score": None,
                "id": len(self.analyses) + 1,
            }
            self.analysis_due[key] = (self.tick + ticks, verdict)
        for key in decision.stop_analysis or []:
            self.analysis_stops.append(key)
            if self.analyses.get(key, {}).get("decision") == "running":
                self.analyses[key].update(decision="pass", reason="Stopped.")
        if decision.run_smoke:
            self.smoke_runs += 1
            ok = self.smoke_passes
            results = [
                {
                    "path": c["path"],
                    "ok": ok,
                    "message": f"GET {c['path']} answered "
                    + (str(c["status"]) if ok else f"500, expected {c['status']}"),
                }
                for c in decision.run_smoke
            ]
            self.checks = {"smoke": {"passed": ok, "results": results, "at": self.now}}

    def advance(self, seconds: float) -> None:
        self.tick += 1
        self.now += seconds
        for key, (due, verdict) in self.analysis_due.items():
            shown = self.analyses[key]
            if shown["decision"] == "running" and self.tick >= due:
                shown.update(decision=verdict, reason=REASONS[verdict])
        for slot in [*self.slots.values(), *self.experiment.values()]:
            for instance in slot.instances:
                due = instance.ready_tick <= self.tick and not instance.failing
                if due and instance.ready_since is None:
                    instance.ready_since = self.now

    def total(self, attribute: str) -> int:
        return sum(getattr(self.role(name), attribute) for name in self.slots)


def role(
    desired: int,
    ready: int | None = None,
    available: int | None = None,
    *,
    version: str | None = "1.0",
    failed: int = 0,
) -> RoleState:
    """A slot with ``desired`` instances, all ready and available unless said otherwise."""
    ready = desired if ready is None else ready
    return RoleState(version, desired, ready, ready if available is None else available, failed)


def at(
    now: float,
    stable: RoleState,
    canary: RoleState,
    checks: dict | None = None,
    analysis: dict | None = None,
) -> Observation:
    return Observation(
        now=now, stable=stable, canary=canary, checks=checks or {}, analysis=analysis or {}
    )


def run(
    fleet: Fleet,
    spec: dict,
    progress: dict,
    *,
    mode: str,
    limit: int,
    intent: Callable[[int], str | None] = lambda tick: None,
    check: Callable[[Observation, Decision], None] = lambda obs, d: None,
    stop: Callable[[Decision], bool] = lambda d: d.outcome is not None or d.failure is not None,
    must_stop: bool = True,
) -> tuple[Decision, dict, int]:
    """Tick until ``stop`` says so: each tick decides twice (asserting both equal), applies the
    decision, calls ``check``, stores progress through JSON and waits. After ``limit`` ticks
    without stopping, fail if ``must_stop``, else return where things are."""
    for ticks in range(1, limit + 1):
        obs = fleet.observe()
        before = json.dumps(progress, sort_keys=True)
        wish = intent(ticks)
        decision = decide(spec, progress, obs, mode=mode, intent=wish)
        again = decide(spec, progress, obs, mode=mode, intent=wish)
        assert decision == again, "decide is not idempotent"
        assert json.dumps(progress, sort_keys=True) == before, "decide changed its input"
        fleet.apply(decision)
        check(obs, decision)
        progress = json.loads(json.dumps(decision.progress))
        if stop(decision):
            return decision, progress, ticks
        fleet.advance(decision.wait)
    if not must_stop:
        return decision, progress, limit
    raise AssertionError(f"no outcome after {limit} ticks: last {decision!r}")
