"""The blue-green planner: preview, smoke checks, the promotion gate, one atomic switch, the
scale-down delay (inside which a rollback is a switch back), and failures."""

from __future__ import annotations

import pytest

from strategies.engine import RoutePlan, decide, routing_before_observing
from strategies.spec import normalise

from .fleet import Fleet, at, role, run

SMOKE = [{"path": "/health", "status": 200}]
STABLE_ONLY = {"stable": 100, "canary": 0}
CANARY_ONLY = {"stable": 0, "canary": 100}


def spec(**extra) -> dict:
    raw = {
        "kind": "blue_green",
        "replicas": 3,
        "preview_replicas": 1,
        "smoke": SMOKE,
        "auto_promote": "20s",
        "scale_down_delay": "30s",
        "progress_deadline": "60s",
        "health": {"interval": "1s"},
    }
    return normalise({**raw, **extra})


def trace_of(fleet: Fleet, bg: dict, *, limit: int = 80, **kwargs):
    trace = []
    decision, progress, _ = run(
        fleet,
        bg,
        {},
        mode="forward",
        limit=limit,
        check=lambda obs, d: trace.append((obs, d)),
        **kwargs,
    )
    return trace, decision, progress


def test_it_previews_smokes_promotes_switches_at_once_and_scales_the_old_side_down_later():
    fleet = Fleet(stable=3)
    trace, last, _ = trace_of(fleet, spec())
    assert last.outcome == "done"
    assert fleet.role("canary").ready == 3 and fleet.role("stable").desired == 0
    routes = [(obs.now, d.route_plan) for obs, d in trace if d.route]
    # two routing changes in all: the preview (no user traffic), then the whole switch at once
    assert [plan for _, plan in routes] == [
        RoutePlan(STABLE_ONLY, preview=True),
        RoutePlan(CANARY_ONLY, preview=False),
    ]
    assert fleet.smoke_runs == 1
    switched_at = routes[1][0]
    for obs, d in trace:
        if obs.now < switched_at:  # the new release is never scaled past the preview early
            assert d.scale.get("canary", 1) in (1, 3)
        # the old side keeps every instance until the scale-down delay has passed
        if "stable" in d.scale:
            assert d.scale["stable"] == 0 and obs.now - switched_at >= 30
    # promoted 20 s after the smoke checks passed, not before
    smoke_at = next(obs.now for obs, d in trace if obs.checks)
    grown_at = next(obs.now for obs, d in trace if d.scale.get("canary") == 3)
    assert grown_at - smoke_at >= 20
    assert [d.step_index for _, d in trace][:2] == [0, 1]


def test_the_preview_size_defaults_to_replicas():
    bg = normalise({"kind": "blue_green", "replicas": 2, "auto_promote": 0})
    first = decide(bg, {}, at(0, role(2), role(0, version=None)), mode="forward")
    assert first.scale == {"canary": 2}
    assert first.route_plan == RoutePlan(STABLE_ONLY, preview=True)


def test_it_asks_for_the_smoke_checks_once_the_preview_is_ready_and_waits_for_the_result():
    bg = spec()
    first = decide(bg, {}, at(0, role(3), role(0, version=None)), mode="forward")
    assert first.run_smoke is None
    ready = decide(bg, first.progress, at(1, role(3), role(1, version="2.0")), mode="forward")
    assert ready.run_smoke == [{"path": "/health", "status": 200, "body_contains": None}]
    assert ready.wait == 0 and ready.step_index == 1 and ready.scale == {}
    passed = {"smoke": {"passed": True, "results": [{"path": "/health", "ok": True}]}}
    after = decide(bg, ready.progress, at(2, role(3), role(1), passed), mode="forward")
    assert after.run_smoke is None and after.step_index == 2
    assert any(e["kind"] == "smoke" for e in after.events)


def test_a_failing_smoke_check_fails_the_rollout_with_what_it_saw():
    fleet = Fleet(stable=3, smoke_passes=False)
    trace, last, progress = trace_of(fleet, spec())
    assert last.failure == (
        "smoke checks failed on the preview: GET /health answered 500, expected 200"
    )
    assert last.scale == {} and not last.route and last.outcome is None
    assert fleet.weights == STABLE_ONLY and fleet.preview  # nobody but the preview saw it
    # the caller then rolls back: one routing change, at once, and the preview is gone
    back = decide(spec(), progress, fleet.observe(), mode="rollback")
    assert back.route_plan == RoutePlan(STABLE_ONLY) and back.outcome == "restored"
    assert back.scale == {} and back.cleanup_after == 30


def test_without_smoke_checks_the_preview_goes_straight_to_the_gate():
    fleet = Fleet(stable=3)
    trace, last, _ = trace_of(fleet, spec(smoke=[], auto_promote=0, scale_down_delay=0))
    assert last.outcome == "done" and fleet.smoke_runs == 0


def test_auto_promote_waits_its_time_and_looks_again_no_later_than_needed():
    bg = spec(smoke=[], auto_promote="25s")
    progress = decide(bg, {}, at(0, role(3), role(0, version=None)), mode="forward").progress
    gate = decide(bg, progress, at(1, role(3), role(1)), mode="forward")
    assert gate.step_index == 2 and gate.scale == {} and gate.wait == 10
    later = decide(bg, gate.progress, at(20, role(3), role(1)), mode="forward")
    assert later.scale == {} and later.wait == pytest.approx(6)
    assert later.message == "promoting automatically in 6s"
    due = decide(bg, later.progress, at(26, role(3), role(1)), mode="forward")
    assert due.scale == {"canary": 3} and due.step_index == 3
    assert "promoted automatically after 25s" in [e["message"] for e in due.events]


def test_without_auto_promote_it_waits_for_a_person_and_the_deadline_does_not_run():
    bg = spec(smoke=[], auto_promote=None)
    progress = decide(bg, {}, at(0, role(3), role(0, version=None)), mode="forward").progress
    waiting = decide(bg, progress, at(1, role(3), role(1)), mode="forward")
    assert waiting.waiting_for_promotion and waiting.scale == {}
    hours = decide(bg, waiting.progress, at(7_200, role(3), role(1)), mode="forward")
    assert hours.waiting_for_promotion and hours.failure is None
    promoted = decide(
        bg, hours.progress, at(7_201, role(3), role(1)), mode="forward", intent="promote"
    )
    assert not promoted.waiting_for_promotion and promoted.scale == {"canary": 3}


def test_a_promote_before_the_checks_passed_is_remembered_but_the_checks_still_run():
    bg = spec(auto_promote=None)
    early = decide(bg, {}, at(0, role(3), role(0, version=None)), mode="forward", intent="promote")
    assert early.progress["promoted"] is True
    ready = decide(bg, early.progress, at(1, role(3), role(1)), mode="forward")
    assert ready.run_smoke and not ready.waiting_for_promotion and "canary" not in ready.scale
    passed = {"smoke": {"passed": True, "results": []}}
    go = decide(bg, ready.progress, at(2, role(3), role(1), passed), mode="forward")
    assert go.scale == {"canary": 3} and not go.waiting_for_promotion


def test_the_switch_waits_for_every_new_instance():
    bg = spec(smoke=[], auto_promote=0)
    progress = decide(bg, {}, at(0, role(3), role(0, version=None)), mode="forward").progress
    grow = decide(bg, progress, at(1, role(3), role(1)), mode="forward")
    assert grow.scale == {"canary": 3} and not grow.route
    partial = decide(bg, grow.progress, at(2, role(3), role(3, 2)), mode="forward")
    assert not partial.route and partial.step_index == 3
    full = decide(bg, partial.progress, at(3, role(3), role(3)), mode="forward")
    assert full.route_plan == RoutePlan(CANARY_ONLY) and full.scale == {}
    assert full.step_index == 5 and full.wait == 10


def test_the_old_side_is_scaled_down_only_after_the_delay():
    bg = spec(smoke=[], auto_promote=0, scale_down_delay="30s")
    fleet = Fleet(stable=3)
    trace, last, _ = trace_of(fleet, bg)
    switched = next(obs.now for obs, d in trace if d.route and d.weights == CANARY_ONLY)
    down = next(obs.now for obs, d in trace if d.scale.get("stable") == 0)
    assert down - switched == pytest.approx(30)
    assert last.outcome == "done"


def _switched(bg: dict):
    fleet = Fleet(stable=3)
    return run(
        fleet,
        bg,
        {},
        mode="forward",
        limit=50,
        stop=lambda d: d.route and d.weights == CANARY_ONLY,
    ) + (fleet,)


def test_a_rollback_within_the_delay_is_a_switch_back_on_the_first_decision():
    bg = spec(smoke=[], auto_promote=0)
    _, progress, _, fleet = _switched(bg)
    assert routing_before_observing(bg, progress, mode="rollback") == RoutePlan(STABLE_ONLY)
    assert routing_before_observing(bg, progress, mode="forward") is None
    back = decide(bg, progress, fleet.observe(), mode="rollback")
    assert back.route_plan == RoutePlan(STABLE_ONLY)
    assert back.outcome == "restored" and back.scale == {}
    assert back.cleanup_after == 30  # the new side is kept for a look, then scaled down


def test_a_rollback_after_the_old_side_was_released_brings_it_back_before_moving_traffic():
    bg = spec(smoke=[], auto_promote=0, scale_down_delay=0)
    fleet = Fleet(stable=3)
    _, progress, _ = run(
        fleet, bg, {}, mode="forward", limit=50, stop=lambda d: "stable" in d.scale
    )
    assert routing_before_observing(bg, progress, mode="rollback") is None
    trace = []
    last, _, _ = run(
        fleet,
        bg,
        progress,
        mode="rollback",
        limit=50,
        check=lambda obs, d: trace.append((obs, d)),
    )
    first = trace[0][1]
    assert first.scale == {"stable": 3} and not first.route
    for obs, d in trace:
        if d.route and d.weights == STABLE_ONLY:
            assert obs.stable.ready == 3  # never all traffic onto a partly started old side
    assert last.outcome == "restored" and fleet.weights == STABLE_ONLY


def test_a_first_deployment_rolls_back_by_stopping_the_new_release():
    bg = spec(smoke=[])
    first = decide(bg, {}, at(0, role(0, version=None), role(0, version=None)), mode="forward")
    assert routing_before_observing(bg, first.progress, mode="rollback") is None
    obs = at(1, role(0, version=None), role(1, version="2.0"))
    back = decide(bg, first.progress, obs, mode="rollback")
    assert back.scale == {"canary": 0} and back.outcome is None
    done = decide(bg, back.progress, at(2, role(0, version=None), role(0)), mode="rollback")
    assert done.outcome == "restored" and done.cleanup_after is None


def test_a_preview_that_never_gets_ready_fails_at_the_progress_deadline():
    fleet = Fleet(stable=3, failing=True)
    trace, last, _ = trace_of(fleet, spec(progress_deadline="20s"))
    assert last.failure.startswith("no progress for 20 s (progress deadline): 0/1 instances")
    assert "failing health checks" in last.failure and last.step_index == 0


def test_paused_mode_holds_at_the_gate():
    bg = spec(smoke=[], auto_promote=None)
    progress = decide(bg, {}, at(0, role(3), role(0, version=None)), mode="forward").progress
    gate = decide(bg, progress, at(1, role(3), role(1)), mode="forward")
    held = decide(bg, gate.progress, at(100, role(3), role(1)), mode="paused", intent="promote")
    assert held.scale == {} and not held.route and held.step_index == 2
