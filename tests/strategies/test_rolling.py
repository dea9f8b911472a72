"""The rolling planner tick by tick: batches, routing, intent, the progress deadline, rollback."""

from __future__ import annotations

import pytest

from strategies.engine import decide
from strategies.spec import normalise

from .fleet import Fleet, at, role, run

SPEC = normalise({"kind": "rolling", "replicas": 4})  # batch 1, surge 1, unavailable 0


def test_first_tick_starts_batch_one_within_the_surge_and_routes_evenly():
    decision = decide(SPEC, {}, at(0, role(4), role(0, version=None)), mode="forward")
    assert decision.scale == {"canary": 1}
    assert decision.route is True and decision.weights is None
    assert (decision.step_index, decision.step) == (
        0,
        "batch 1 of 4: 1/4 instances on the new release",
    )
    assert [event["kind"] for event in decision.events] == ["step", "weights"]
    assert decision.events[0]["message"] == "batch 1 of 4 started: 1/4 on the new release"
    assert decision.outcome is None and decision.failure is None
    assert 0.25 <= decision.wait <= 1


def test_an_idle_tick_changes_nothing_and_reports_no_events():
    first = decide(SPEC, {}, at(0, role(4), role(0, version=None)), mode="forward")
    decision = decide(SPEC, first.progress, at(1, role(4), role(1, 0)), mode="forward")
    assert decision.scale == {} and decision.route is False and decision.events == []
    assert "batch 1 of 4" in decision.message


def test_the_old_release_shrinks_only_once_new_instances_are_available():
    first = decide(SPEC, {}, at(0, role(4), role(0, version=None)), mode="forward")
    ready_not_available = decide(
        SPEC, first.progress, at(1, role(4), role(1, 1, 0)), mode="forward"
    )
    assert ready_not_available.scale == {}
    available = decide(SPEC, first.progress, at(2, role(4), role(1, 1, 1)), mode="forward")
    assert available.scale == {"stable": 3}


def test_the_old_release_never_shrinks_past_the_current_batch():
    spec = normalise({"kind": "rolling", "replicas": 4, "max_unavailable": 2})
    decision = decide(spec, {}, at(0, role(4), role(0, version=None)), mode="forward")
    assert decision.scale == {"canary": 1, "stable": 3}


def test_a_complete_batch_starts_the_next_one_with_one_event():
    progress = decide(SPEC, {}, at(0, role(4), role(0, version=None)), mode="forward").progress
    decision = decide(SPEC, progress, at(3, role(3), role(1)), mode="forward")
    assert decision.step_index == 1
    assert decision.scale == {"canary": 2}
    assert [e["message"] for e in decision.events] == [
        "batch 2 of 4 started: 2/4 on the new release"
    ]
    again = decide(SPEC, decision.progress, at(4, role(3), role(2, 0)), mode="forward")
    assert again.events == [] and again.step_index == 1


def test_the_last_batch_routes_everything_to_the_new_release_and_is_done():
    progress = {"batch": 4, "started_at": 0, "last_progress_at": 0, "weights": None}
    decision = decide(SPEC, progress, at(9, role(0, 0), role(4)), mode="forward")
    assert decision.outcome == "done"
    assert decision.route is True and decision.weights == {"stable": 0, "canary": 100}
    assert decision.step_index == 3
    assert "done" in [event["kind"] for event in decision.events]


def test_a_first_deployment_only_grows_the_new_release_in_batches():
    spec = normalise({"kind": "rolling", "replicas": 3, "batch_size": 2})
    fleet = Fleet(stable=0, delay=lambda: 1)
    seen: list[dict] = []
    decision, _, _ = run(
        fleet, spec, {}, mode="forward", limit=50, check=lambda obs, d: seen.append(d.scale)
    )
    assert decision.outcome == "done"
    assert [scale for scale in seen if scale] == [{"canary": 2}, {"canary": 3}]


def test_promote_starts_the_next_batch_without_waiting():
    progress = decide(SPEC, {}, at(0, role(4), role(0, version=None)), mode="forward").progress
    decision = decide(SPEC, progress, at(1, role(4), role(1, 0)), mode="forward", intent="promote")
    assert decision.step_index == 1
    assert decision.progress["batch"] == 2
    assert decision.events[0]["kind"] == "promote"
    assert decision.scale == {}  # surge is full: 4 old + 1 new, and nothing new is available


def test_promote_full_goes_to_the_last_batch_within_surge_and_unavailable():
    spec = normalise({"kind": "rolling", "replicas": 4, "max_surge": 2, "max_unavailable": 1})
    progress = decide(spec, {}, at(0, role(4), role(0, version=None)), mode="forward").progress
    obs = at(1, role(4), role(1, 1, 1))
    decision = decide(spec, progress, obs, mode="forward", intent="promote_full")
    assert decision.step_index == 3
    assert decision.scale == {"canary": 2, "stable": 2}


def test_promote_on_the_last_batch_changes_nothing():
    progress = {"batch": 4, "started_at": 0, "last_progress_at": 0, "weights": None, "mark": [4, 3]}
    obs = at(1, role(1), role(4, 4, 3))
    plain = decide(SPEC, progress, obs, mode="forward")
    assert decide(SPEC, progress, obs, mode="forward", intent="promote") == plain
    assert decide(SPEC, progress, obs, mode="forward", intent="promote_full") == plain


def test_no_progress_within_the_deadline_is_a_failure_saying_what_was_seen():
    progress = {"batch": 1, "started_at": 0, "last_progress_at": 0, "weights": None, "mark": [1, 0]}
    obs = at(601, role(4), role(1, 1, 0))
    decision = decide(SPEC, progress, obs, mode="forward")
    assert decision.failure == (
        "no progress for 600 s (progress deadline): batch 1 of 4, "
        "1/4 instances of the new release ready"
    )
    assert decision.scale == {} and decision.route is False and decision.outcome is None
    assert decision.events[-1] == {"kind": "failure", "message": decision.failure, "data": {}}
    assert decide(SPEC, progress, at(600, role(4), role(1, 1, 0)), mode="forward").failure is None


def test_new_instances_that_never_get_healthy_fail_the_rollout_at_the_deadline():
    spec = normalise({"kind": "rolling", "replicas": 2, "progress_deadline": "10s"})
    fleet = Fleet(stable=2, failing=True)
    decision, _, _ = run(fleet, spec, {}, mode="forward", limit=200)
    assert decision.failure == (
        "no progress for 10 s (progress deadline): batch 1 of 2, "
        "0/2 instances of the new release ready, 1 instance failing health checks"
    )
    assert 10 < fleet.now - 1_000 <= 11
    assert fleet.role("stable").ready == 2


def test_a_new_health_failure_is_an_event_once():
    progress = decide(SPEC, {}, at(0, role(4), role(0, version=None)), mode="forward").progress
    failing = at(1, role(4), role(1, 0, failed=1))
    decision = decide(SPEC, progress, failing, mode="forward")
    assert decision.events == [
        {
            "kind": "health",
            "message": "1 instance of the new release failing health checks",
            "data": {"role": "canary", "failed": 1},
        }
    ]
    assert decide(SPEC, decision.progress, failing, mode="forward").events == []


def test_a_scale_already_asked_for_is_not_asked_again():
    progress = decide(SPEC, {}, at(0, role(4), role(0, version=None)), mode="forward").progress
    assert decide(SPEC, progress, at(1, role(4), role(1, 0)), mode="forward").scale == {}


def test_rollback_brings_the_old_release_back_before_stopping_the_new_one():
    progress = {"batch": 3, "last_progress_at": 0, "weights": None, "had_stable": True}
    progress["step_index"] = 2
    first = decide(SPEC, progress, at(10, role(2), role(3, 2)), mode="rollback")
    assert first.scale == {"stable": 4}  # past the surge budget: service first
    assert first.route and first.weights == {"stable": 100, "canary": 0}
    assert first.events[0]["kind"] == "rollback"
    assert first.step == "rollback: 2/4 instances of the old release ready"
    assert first.step_index == 2
    waiting = decide(SPEC, first.progress, at(11, role(4, 3), role(3, 2)), mode="rollback")
    assert waiting.scale == {} and waiting.outcome is None
    full = decide(SPEC, waiting.progress, at(12, role(4), role(3, 2)), mode="rollback")
    assert full.scale == {"canary": 0} and full.outcome is None
    done = decide(SPEC, full.progress, at(13, role(4), role(0, 0)), mode="rollback")
    assert done.outcome == "restored" and done.scale == {} and done.wait == 0


def test_rollback_routes_evenly_until_an_old_instance_is_ready():
    progress = {"batch": 4, "weights": {"stable": 0, "canary": 100}, "had_stable": True}
    decision = decide(SPEC, progress, at(10, role(0, 0), role(4)), mode="rollback")
    assert decision.scale == {"stable": 4}
    assert decision.route is True and decision.weights is None


def test_rolling_back_a_first_deployment_stops_the_new_release():
    progress = decide(SPEC, {}, at(0, role(0, version=None), role(0, version=None)), mode="forward")
    obs = at(1, role(0, version=None), role(1, 1))
    decision = decide(SPEC, progress.progress, obs, mode="rollback")
    assert decision.scale == {"canary": 0}
    restored = decide(
        SPEC, decision.progress, at(2, role(0, version=None), role(0)), mode="rollback"
    )
    assert restored.outcome == "restored"


@pytest.mark.parametrize("mode", ["forward", "rollback", "paused"])
def test_decide_does_not_touch_its_inputs_and_repeats_itself(mode):
    progress = {"batch": 2, "started_at": 0, "last_progress_at": 0, "weights": None, "mark": [2, 1]}
    snapshot = {**progress, "mark": [2, 1]}
    obs = at(5, role(3), role(2, 2, 1, failed=1))
    assert decide(SPEC, progress, obs, mode=mode) == decide(SPEC, progress, obs, mode=mode)
    assert progress == snapshot


def test_a_crashed_old_instance_does_not_stall_the_rollout():
    # 4 old instances, one crashed (3 ready); the new one is available: the crashed one may go
    first = decide(SPEC, {}, at(0, role(4, 3, failed=1), role(0, version=None)), mode="forward")
    decision = decide(
        SPEC, first.progress, at(1, role(4, 3, failed=1), role(1, 1, 1)), mode="forward"
    )
    assert decision.scale == {"stable": 3}
