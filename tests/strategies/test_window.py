"""The engine's side of the rollback window (``keep_previous``): a rolling, canary or blue-green
rollout that succeeds leaves the previous release up at 0% traffic; recreate ignores it; and the
switch-back spec a rollback inside the window uses switches in one tick when the previous release
is warm (docs/loop.md)."""

from __future__ import annotations

import pytest

from strategies.engine import decide
from strategies.spec import normalise, switch_back_spec_of

from .fleet import Fleet, at, role

HEALTH = {"path": "/health", "interval": 0.1, "healthy_threshold": 1}
SPECS = {
    "rolling": {"kind": "rolling", "replicas": 3, "batch_size": 1, "max_surge": 1},
    "canary": {
        "kind": "canary",
        "stable_replicas": 3,
        "steps": [{"set_weight": 20}, {"set_weight": 100}],
    },
    "blue_green": {
        "kind": "blue_green",
        "replicas": 3,
        "preview_replicas": 1,
        "auto_promote": 0,
        "scale_down_delay": 0,
    },
    "recreate": {"kind": "recreate", "replicas": 3},
}


def drive(spec: dict, *, keep_previous: bool, limit: int = 60):
    """Tick a simulated target from 3 instances of 1.0 to done; returns (fleet, last decision)."""
    fleet = Fleet(stable=3)
    progress: dict = {}
    for _ in range(limit):
        decision = decide(
            spec, progress, fleet.observe(), mode="forward", keep_previous=keep_previous
        )
        assert decision.failure is None, decision.failure
        fleet.apply(decision)
        progress = decision.progress
        if decision.outcome == "done":
            return fleet, decision
        fleet.advance(0.5)
    raise AssertionError("the rollout never finished")


@pytest.mark.parametrize("kind", ["rolling", "canary", "blue_green"])
def test_a_rollout_that_keeps_the_previous_release_ends_with_it_up_and_no_traffic_on_it(kind):
    spec = normalise(SPECS[kind])
    fleet, decision = drive(spec, keep_previous=True)
    assert fleet.weights == {"stable": 0, "canary": 100}
    assert fleet.slots["stable"].desired == 3  # warm: still (or again) three of 1.0
    assert fleet.role("canary").available == 3
    done = [e["message"] for e in decision.events if e["kind"] == "done"]
    assert done and "rollback window" in done[0]


@pytest.mark.parametrize("kind", ["rolling", "canary", "blue_green", "recreate"])
def test_without_the_window_the_previous_release_is_scaled_down_as_before(kind):
    spec = normalise(SPECS[kind])
    fleet, _ = drive(spec, keep_previous=False)
    assert fleet.slots["stable"].desired == 0


def test_recreate_has_no_window_even_when_asked():
    fleet, decision = drive(normalise(SPECS["recreate"]), keep_previous=True)
    assert fleet.slots["stable"].desired == 0
    assert "rollback window" not in " ".join(e["message"] for e in decision.events)


def test_a_rolling_update_routes_away_before_it_starts_the_previous_release_again():
    spec = normalise(SPECS["rolling"])
    progress = {"batch": 3, "started_at": 0, "last_progress_at": 0, "weights": None}
    progress["had_stable"] = True
    decision = decide(
        spec, progress, at(9, role(0, 0), role(3)), mode="forward", keep_previous=True
    )
    assert decision.outcome == "done"
    assert decision.route and decision.weights == {"stable": 0, "canary": 100}
    assert decision.scale == {"stable": 3}


def test_a_first_deployment_keeps_nothing():
    spec = normalise(SPECS["blue_green"])
    fleet = Fleet(stable=0)
    progress: dict = {}
    for _ in range(40):
        decision = decide(spec, progress, fleet.observe(), mode="forward", keep_previous=True)
        fleet.apply(decision)
        progress = decision.progress
        if decision.outcome == "done":
            break
        fleet.advance(0.5)
    assert decision.outcome == "done" and fleet.slots["stable"].desired == 0


@pytest.mark.parametrize("kind", ["rolling", "canary", "blue_green"])
def test_the_switch_back_into_a_warm_slot_routes_everything_there_in_one_tick(kind):
    """A rollback inside the window: the old release (``canary`` role of the new deployment) is
    already ready in full, so the first tick routes 100% to it before scaling the newer release
    down, and asks for no instance of the old release (none is restarted)."""
    spec = normalise({**switch_back_spec_of(normalise(SPECS[kind])), "health": HEALTH})
    warm = role(3, version="1.0")
    newer = role(3, version="2.0")
    decision = decide(spec, {}, at(100, newer, warm), mode="forward")
    assert decision.route and decision.weights == {"stable": 0, "canary": 100}
    assert decision.preview is False
    assert decision.scale == {"stable": 0}  # the newer slot retired; the warm one left alone
    assert decision.failure is None
    # the next tick, once the newer slot was asked to stop, finishes
    after = decide(spec, decision.progress, at(100.1, role(0, version="2.0"), warm), mode="forward")
    assert after.outcome == "done" and not after.route


def test_the_switch_back_waits_for_a_warm_instance_that_was_lost():
    spec = normalise(switch_back_spec_of(normalise(SPECS["blue_green"])))
    decision = decide(spec, {}, at(100, role(3), role(3, 2)), mode="forward")
    assert not (decision.route and decision.weights == {"stable": 0, "canary": 100})
    assert decision.outcome is None
