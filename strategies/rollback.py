"""Rollback, shared by every strategy that keeps the old release in the stable slot.

The old release is scaled back to R at once (max_surge may be exceeded: restoring service beats
the surge budget). Traffic stays spread evenly over whatever is ready until one old instance is
ready, then goes 100% to the old release. The new release is stopped either at once
(``drain_first=False``, recreate) or only once all R old instances are ready
(``drain_first=True``, rolling: capacity first). Restored when R old instances are ready and the
new release was asked to stop.

If no release was running when the rollout began (a first deployment), rolling back means
stopping the new release; it is restored once the new release was asked to stop.

Rollback has no progress deadline: it keeps trying, and its message says what it waits for.
Progress keys owned here: ``rollback_started_at``.
"""

from __future__ import annotations

from typing import Any

from strategies.state import Decision, Observation
from strategies.tick import Tick

STABLE_ONLY = {"stable": 100, "canary": 0}


def begin(tick: Tick, obs: Observation, restoring: str) -> tuple[bool, int, bool]:
    """What every rollback starts with: whether a release ran here before (``had_stable``), the
    step shown, and whether this is the rollback's first tick (its event is written then, with
    ``restoring`` saying what it brings back)."""
    tick.begin()
    stable = obs.stable
    had_stable = tick.progress.get("had_stable", stable.version is not None or stable.desired > 0)
    index = min(int(tick.progress.get("step_index", 0)), len(tick.steps) - 1)
    first = "rollback_started_at" not in tick.progress
    if first:
        tick.progress["rollback_started_at"] = obs.now
        tick.event(
            "rollback", f"rollback started: {restoring if had_stable else 'no earlier release'}"
        )
    return had_stable, index, first


def stop_new_release(tick: Tick, obs: Observation, index: int, *, force: bool = False) -> Decision:
    """Rolling back a first deployment (nothing ran here before): stop the new release."""
    tick.ensure("canary", 0)
    tick.route_to(None, force=force)
    step = "rollback: stopping the new release (nothing ran here before)"
    if obs.canary.desired == 0:
        tick.event("restored", "rollback done: the new release was stopped")
        return tick.finish(step_index=index, step=step, message=step, wait=0.0, outcome="restored")
    return tick.finish(step_index=index, step=step, message=step, wait=tick.busy_wait())


def restore(
    spec: dict[str, Any], progress: dict[str, Any], obs: Observation, *, drain_first: bool
) -> Decision:
    tick = Tick(spec, progress, obs)
    stable, canary, replicas = obs.stable, obs.canary, tick.replicas
    had_stable, index, _ = begin(tick, obs, f"restoring {replicas} instances of the old release")
    if not had_stable:
        return stop_new_release(tick, obs, index)

    tick.ensure("stable", max(replicas, stable.desired))
    tick.route_to(STABLE_ONLY if stable.ready >= 1 else None)
    if not drain_first or stable.ready >= replicas:
        tick.ensure("canary", 0)
        if "canary" in tick.scale:
            tick.event("scale", "stopping the new release", role="canary", replicas=0)
    step = f"rollback: {min(stable.ready, replicas)}/{replicas} instances of the old release ready"
    if stable.ready >= replicas and canary.desired == 0:
        tick.event("restored", f"rollback done: {replicas}/{replicas} on the old release")
        return tick.finish(step_index=index, step=step, message=step, wait=0.0, outcome="restored")
    waiting = "" if canary.desired == 0 else f"; {canary.desired} of the new release still running"
    return tick.finish(step_index=index, step=step, message=step + waiting, wait=tick.busy_wait())
