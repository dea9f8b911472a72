"""The recreate planner: stop the old release, start the new one, route to it; and rollback."""

from __future__ import annotations

import pytest

from strategies.engine import decide
from strategies.spec import normalise

from .fleet import Fleet, at, role, run

SPEC = normalise({"kind": "recreate", "replicas": 2, "progress_deadline": "30s"})


def _trace(fleet: Fleet, spec: dict = SPEC, mode: str = "forward", progress: dict | None = None):
    """Run to an outcome or failure; also return every (observation, decision) on the way."""
    trace: list = []

    def check(obs, decision) -> None:
        trace.append((obs, decision))

    decision, progress, _ = run(fleet, spec, progress or {}, mode=mode, limit=100, check=check)
    return decision, progress, trace


def test_recreate_stops_the_old_release_before_starting_the_new_one():
    fleet = Fleet(stable=2, delay=lambda: 2)
    decision, _, trace = _trace(fleet)
    assert decision.outcome == "done"
    actions = [(d.step_index, d.scale, d.weights if d.route else "-") for _, d in trace]
    acted = [action for action in actions if action[1] or action[2] != "-"]
    assert acted == [
        (0, {"stable": 0}, {"stable": 100, "canary": 0}),
        (1, {"canary": 2}, "-"),
        (2, {}, {"stable": 0, "canary": 100}),
    ]
    assert [d.step_index for _, d in trace] == sorted(d.step_index for _, d in trace)
    for obs, d in trace:
        if "canary" in d.scale:
            assert obs.stable.desired == 0 and obs.stable.ready == 0
    assert fleet.role("canary").available == 2 and fleet.role("stable").desired == 0


def test_recreate_waits_while_old_instances_are_still_draining():
    progress = decide(SPEC, {}, at(0, role(2), role(0, version=None)), mode="forward").progress
    draining = decide(SPEC, progress, at(1, role(0, 1), role(0, version=None)), mode="forward")
    assert draining.scale == {} and draining.step_index == 0
    assert draining.message == "stopping the old release: 1 instance still running"


def test_recreate_of_a_first_deployment_starts_at_once_without_routing_to_nothing():
    first = decide(SPEC, {}, at(0, role(0, version=None), role(0, version=None)), mode="forward")
    assert first.scale == {"canary": 2}
    assert first.route is False
    assert first.step_index == 1


def test_recreate_routes_to_the_new_release_as_soon_as_one_instance_is_ready():
    progress = {"phase": 1, "started_at": 0, "last_progress_at": 0, "had_stable": True}
    decision = decide(SPEC, progress, at(3, role(0, 0), role(2, 1)), mode="forward")
    assert decision.route and decision.weights == {"stable": 0, "canary": 100}
    assert decision.outcome is None and decision.step_index == 2


@pytest.mark.parametrize("intent", ["promote", "promote_full"])
def test_intent_changes_nothing_for_recreate(intent):
    progress = decide(SPEC, {}, at(0, role(2), role(0, version=None)), mode="forward").progress
    obs = at(1, role(0, 2), role(0, version=None))
    plain = decide(SPEC, progress, obs, mode="forward")
    assert decide(SPEC, progress, obs, mode="forward", intent=intent) == plain


def test_recreate_fails_when_the_new_release_never_gets_healthy():
    fleet = Fleet(stable=2, failing=True)
    decision, _, _ = _trace(fleet)
    assert decision.failure is not None
    assert decision.failure.startswith("no progress for 30 s (progress deadline): 0/2 instances")
    assert decision.step_index == 1


def test_recreate_rollback_stops_the_new_release_and_starts_the_old_at_once():
    fleet = Fleet(stable=2, delay=lambda: 2)
    _, progress, _ = run(fleet, SPEC, {}, mode="forward", limit=100)
    decision, _, trace = _trace(fleet, mode="rollback", progress=progress)
    assert trace[0][1].scale == {"stable": 2, "canary": 0}
    assert trace[0][1].route and trace[0][1].weights is None  # nothing of the old release is up yet
    assert decision.outcome == "restored"
    assert fleet.weights == {"stable": 100, "canary": 0}
    assert fleet.role("stable").ready == 2 and fleet.role("canary").desired == 0
