"""The rollout engine's one entry point: ``decide`` tells the reconcile loop what to do this tick.

``decide(spec, progress, obs, mode=..., intent=...)`` is pure: it reads a normalised spec (see
``strategies.spec.normalise``), the progress it returned last tick (``{}`` on the first) and an
``Observation`` of both slots, and returns a ``Decision``. The same inputs always give an equal
decision, and it never asks for a scale the observation already shows (only changes), so a tick
run twice is harmless. Paused mode is the same for every kind (``strategies.tick.hold``); forward
and rollback are dispatched to the kind's planner module in ``PLANNERS``.

``routing_before_observing(spec, progress, mode)`` returns the routing a tick will apply whatever it
observes (a blue-green or canary rollback: 100% to the old release), so the caller can apply it
before reading the target's status; ``decide`` then asks for the same routing again, which the
caller may skip as already done.

Analysis: a decision may ask the caller to start analysis runs (``Decision.start_analysis``, by
key: ``step-<i>``, ``background``, ``pre-promotion``, ``post-promotion``, ``batch-<n>``) or stop
them (``stop_analysis``); their verdicts come back in ``Observation.analysis``. A step waiting on
a run holds while it measures, moves on when it passes, fails the rollout when it fails (the
caller rolls back) and waits for a person when it is inconclusive; see docs/analysis.md.

Assumptions the caller keeps: ``obs.canary`` is the slot being moved to the new release and
``obs.stable`` the slot serving the old one, for every kind; intent is applied on the tick it is
passed (forward mode only) and should be cleared afterwards; ``available`` counts instances ready
for at least ``strategies.spec.min_ready_of(spec)`` seconds.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from strategies import bluegreen, canary, recreate, rolling, switchback
from strategies.state import Decision, Observation, RoleState, RoutePlan
from strategies.tick import hold

__all__ = [
    "MODES",
    "WINDOW_KINDS",
    "INTENTS",
    "PLANNERS",
    "Decision",
    "Observation",
    "RoleState",
    "RoutePlan",
    "decide",
    "routing_before_observing",
]

MODES = ("forward", "paused", "rollback")
INTENTS = (None, "promote", "promote_full")
# kind -> module with decide_forward(spec, progress, obs, *, intent) and
# decide_rollback(spec, progress, obs)
PLANNERS: dict[str, ModuleType] = {
    "recreate": recreate,
    "rolling": rolling,
    "blue_green": bluegreen,
    "canary": canary,
}
# kinds whose rollback is a switch back to an old side that is kept fully up
SWITCH_BACK_KINDS = ("blue_green", "canary")
# kinds that can leave the previous release warm when they succeed (``keep_previous``: the
# caller's rollback window); recreate stops the old release first, so it has none
WINDOW_KINDS = ("rolling", "blue_green", "canary")


def decide(
    spec: dict[str, Any],
    progress: dict[str, Any],
    obs: Observation,
    *,
    mode: str,
    intent: str | None = None,
    keep_previous: bool = False,
) -> Decision:
    """What to do this tick. ``mode``: "forward" | "paused" | "rollback"; ``intent``: None |
    "promote" | "promote_full". ``keep_previous``: the rollout ends with the previous release
    still up (warm at 0% traffic) rather than scaled down, for the kinds in ``WINDOW_KINDS``
    (ignored for the others). Raises ValueError for an unknown mode, intent or kind."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}: expected one of {', '.join(MODES)}")
    if intent not in INTENTS:
        raise ValueError(f"unknown intent {intent!r}: expected None, 'promote' or 'promote_full'")
    planner = PLANNERS.get(spec.get("kind"))
    if planner is None:
        raise ValueError(f"no planner for strategy kind {spec.get('kind')!r}")
    progress = progress or {}
    if mode == "paused":
        return hold(spec, progress, obs)
    if mode == "rollback":
        return planner.decide_rollback(spec, progress, obs)
    if keep_previous and spec.get("kind") in WINDOW_KINDS:
        return planner.decide_forward(spec, progress, obs, intent=intent, keep_previous=True)
    return planner.decide_forward(spec, progress, obs, intent=intent)


def routing_before_observing(
    spec: dict[str, Any], progress: dict[str, Any] | None, *, mode: str
) -> RoutePlan | None:
    """The routing this tick applies whatever the observation says, or None if it depends on
    it. Only a blue-green or canary rollback knows it up front (100% to the old release)."""
    if mode != "rollback" or spec.get("kind") not in SWITCH_BACK_KINDS:
        return None
    return switchback.routing_before_observing(progress or {})
