"""Recreate planner: stop the old release, then start the new one (downtime in between).

Phases (= step indexes of ``describe_steps``): 0 stop the old release (traffic stays 100% on it
while it drains), 1 start R instances of the new release once the old one is fully stopped,
2 route 100% to the new release once one of its instances is ready; done when R are available.
Phases only move forward. Intent has no effect. Rollback stops the new release and starts the
old one at the same time (see ``strategies.rollback``).
Progress keys owned here: ``phase``.
"""

from __future__ import annotations

from typing import Any

from strategies.rollback import restore
from strategies.state import Decision, Observation
from strategies.tick import Tick, instances

STOP, START, ROUTE = 0, 1, 2


def decide_forward(
    spec: dict[str, Any], progress: dict[str, Any], obs: Observation, *, intent: str | None
) -> Decision:
    tick = Tick(spec, progress, obs)
    tick.begin_forward()
    replicas, stable, canary = tick.replicas, obs.stable, obs.canary
    if "phase" not in tick.progress:
        _entered(tick, STOP)
    phase = int(tick.progress.get("phase", STOP))
    if phase == STOP and stable.desired == 0 and stable.ready == 0:
        phase = START
        _entered(tick, START)
    if phase == START and canary.ready >= 1:
        phase = ROUTE
        _entered(tick, ROUTE)
    tick.progress["phase"] = phase
    tick.note_progress([phase, canary.available, -stable.ready])

    if phase == ROUTE and canary.available >= replicas:
        tick.route_to({"stable": 0, "canary": 100})
        tick.event("done", f"rollout done: {replicas}/{replicas} instances on the new release")
        return tick.finish(step_index=ROUTE, message="rollout done", wait=0.0, outcome="done")
    if tick.overdue():
        if phase == STOP:
            seen = f"{instances(stable.ready)} of the old release still running"
        else:
            seen = tick.new_release_seen()
        return tick.fail(seen, step_index=phase)

    if phase == STOP:
        tick.ensure("stable", 0)
        if tick.progress.get("had_stable"):
            tick.route_to({"stable": 100, "canary": 0})
        message = f"stopping the old release: {instances(stable.ready)} still running"
    else:
        tick.ensure("canary", max(canary.desired, replicas))
        if phase == ROUTE:
            tick.route_to({"stable": 0, "canary": 100})
        message = f"{canary.available}/{replicas} instances of the new release available"
    return tick.finish(step_index=phase, message=message, wait=tick.busy_wait())


def decide_rollback(spec: dict[str, Any], progress: dict[str, Any], obs: Observation) -> Decision:
    """Stop the new release and start R instances of the old one at once; route to the old
    release when one instance is ready; restored when R are ready."""
    return restore(spec, progress, obs, drain_first=False)


def _entered(tick: Tick, phase: int) -> None:
    step = tick.steps[phase]
    tick.event("step", f"step {phase + 1} of 3 started: {step}", step_index=phase)
