"""Rollback for blue-green and canary: a switch back, because the old release never left.

Both kinds keep the old release's side fully scaled until the new release has taken 100% (and,
for blue-green, until the scale-down delay has passed), so rolling back is one routing change:
100% of new requests to the old release, targeting rules and the preview off. That routing does
not depend on what the target looks like, so ``routing_before_observing`` hands it to the caller
to apply before it even reads the target's status (the abort latency is the time to that call).

If the old side is not fully ready (an instance crashed, or the rollout had begun to scale it
down), it is scaled back up and traffic is spread over every ready instance of both sides until
it is, so a few old instances are never handed the whole load. The new release's slot is kept
as it is for inspection and scaled down later by the caller (``Decision.cleanup_after``).

A first deployment (nothing ran before) rolls back by stopping the new release.
Progress keys owned here: ``rollback_started_at``; read: ``had_stable``, ``released_stable``
(set by the forward planners when they ask the old side to scale down).
"""

from __future__ import annotations

from typing import Any

from strategies.rollback import begin, stop_new_release
from strategies.state import Decision, Observation, RoutePlan
from strategies.tick import Tick

STABLE_ONLY = {"stable": 100, "canary": 0}
CANARY_ONLY = {"stable": 0, "canary": 100}
KEEP_FOR_INSPECTION = 30.0  # seconds the new release's slot stays up after a rollback


def routing_before_observing(progress: dict[str, Any]) -> RoutePlan | None:
    """The routing a rollback applies whatever it observes: 100% to the old release, when the
    rollout has not asked the old side to scale down (so it is known to be fully up)."""
    if progress.get("had_stable") and not progress.get("released_stable"):
        return RoutePlan(STABLE_ONLY)
    return None


def switch_back(spec: dict[str, Any], progress: dict[str, Any], obs: Observation) -> Decision:
    tick = Tick(spec, progress, obs)
    stable, canary, replicas = obs.stable, obs.canary, tick.replicas
    had_stable, index, first = begin(tick, obs, "switching back to the old release")
    if not had_stable:
        return stop_new_release(tick, obs, index, force=first)

    tick.ensure("stable", max(replicas, stable.desired))
    full = stable.ready >= replicas
    if full or canary.ready == 0:
        tick.route_to(STABLE_ONLY, force=first)
    elif stable.ready >= 1:
        tick.route_to(None, force=first)  # share the load until the old side is back in full
    step = f"rollback: {min(stable.ready, replicas)}/{replicas} instances of the old release ready"
    if full and tick.routed() == RoutePlan(STABLE_ONLY):
        if canary.desired > 0:
            tick.cleanup_after = KEEP_FOR_INSPECTION
            kept = f"; the new release's {canary.desired} instance(s) are kept for inspection"
        else:
            kept = ""
        tick.event("restored", f"rollback done: 100% of requests on the old release{kept}")
        return tick.finish(
            step_index=index, step=step, message=step + kept, wait=0.0, outcome="restored"
        )
    return tick.finish(step_index=index, step=step, message=step, wait=tick.busy_wait())
