"""The canary planner: the ladder of weights and pauses, canary sizing, targeting rules,
promote / promote full, and the abort that puts every request back on the old release at once."""

from __future__ import annotations

import pytest

from strategies.engine import RoutePlan, decide, routing_before_observing
from strategies.spec import normalise

from .fleet import Fleet, at, role, run

STABLE_ONLY = {"stable": 100, "canary": 0}
CANARY_ONLY = {"stable": 0, "canary": 100}
RULES = {"header": "X-Canary", "cookie": None, "sticky_key": "header:X-User-Id"}


def spec(steps=None, **extra) -> dict:
    raw = {
        "kind": "canary",
        "steps": steps
        or [
            {"set_weight": 10},
            {"pause": {"duration": "30s"}},
            {"set_weight": 50},
            {"pause": {"duration": "30s"}},
            {"set_weight": 100},
        ],
        "stable_replicas": 4,
        "progress_deadline": "60s",
        "health": {"interval": "1s"},
        "route": {"header": "X-Canary", "sticky_key": "header:X-User-Id"},
    }
    return normalise({**raw, **extra})


def ladder(fleet: Fleet, canary: dict, **kwargs):
    trace = []
    last, progress, _ = run(
        fleet,
        canary,
        {},
        mode="forward",
        limit=kwargs.pop("limit", 100),
        check=lambda obs, d: trace.append((obs, d)),
        **kwargs,
    )
    return trace, last, progress


def test_it_climbs_the_ladder_then_promotes_and_only_then_scales_the_old_release_down():
    fleet = Fleet(stable=4)
    trace, last, _ = ladder(fleet, spec())
    assert last.outcome == "done"
    routed = [d.weights for _, d in trace if d.route]
    assert routed == [
        STABLE_ONLY,
        {"stable": 90, "canary": 10},
        {"stable": 50, "canary": 50},
        CANARY_ONLY,
    ]
    # match_weight: 1 instance at 10%, 2 at 50%, 4 at 100%
    assert [d.scale["canary"] for _, d in trace if "canary" in d.scale] == [1, 2, 4]
    # the old release keeps its 4 instances until 100% is on the new one
    down = [(obs, d) for obs, d in trace if "stable" in d.scale]
    assert [d.scale for _, d in down] == [{"stable": 0}]
    assert down[0][1].weights == CANARY_ONLY
    # weights move only when the new release has the instances for them
    for obs, d in trace:
        if d.route and d.weights["canary"] not in (0, 100):
            assert obs.canary.available >= {10: 1, 50: 2}[d.weights["canary"]]
    # pauses last their time
    at_10 = next(obs.now for obs, d in trace if d.route and d.weights["canary"] == 10)
    at_50 = next(obs.now for obs, d in trace if d.route and d.weights["canary"] == 50)
    assert at_50 - at_10 >= 30
    assert fleet.rules is None  # targeting rules end with the promotion


def test_the_targeting_rules_go_with_every_weight_before_the_promotion():
    fleet = Fleet(stable=4)
    trace, _, _ = ladder(fleet, spec())
    plans = [d.route_plan for _, d in trace if d.route]
    assert [plan.rules for plan in plans] == [RULES, RULES, RULES, None]
    assert not any(plan.preview for plan in plans)


def test_a_spec_without_route_rules_routes_weights_alone():
    decision = decide(spec(route={}), {}, at(0, role(4), role(0, version=None)), mode="forward")
    assert decision.route_plan == RoutePlan(STABLE_ONLY)


def test_an_indefinite_pause_waits_for_a_person_and_promote_finishes_it():
    canary = spec([{"set_weight": 20}, {"pause": {}}, {"set_weight": 60}])
    fleet = Fleet(stable=4)
    _, waiting, progress = ladder(fleet, canary, stop=lambda d: d.waiting_for_promotion)
    assert waiting.step_index == 1 and fleet.weights == {"stable": 80, "canary": 20}
    hours = decide(canary, progress, at(fleet.now + 7_200, role(4), role(1)), mode="forward")
    assert hours.waiting_for_promotion and hours.failure is None and hours.scale == {}
    promoted = decide(canary, progress, fleet.observe(), mode="forward", intent="promote")
    assert not promoted.waiting_for_promotion and promoted.step_index == 2
    assert promoted.scale == {"canary": 3}
    assert "promoted: pause until promoted finished" in [e["message"] for e in promoted.events]


def test_promote_finishes_a_timed_pause_early():
    canary = spec([{"set_weight": 20}, {"pause": {"duration": "1h"}}, {"set_weight": 60}])
    fleet = Fleet(stable=4)
    _, paused, progress = ladder(fleet, canary, stop=lambda d: d.step_index == 1)
    assert paused.wait == 10  # looks again within 10 s even during a long pause
    promoted = decide(canary, progress, fleet.observe(), mode="forward", intent="promote")
    assert promoted.step_index == 2 and promoted.scale == {"canary": 3}


def test_promote_is_ignored_outside_a_pause_so_a_late_click_skips_nothing_further_on():
    canary = spec([{"set_weight": 20}, {"pause": {}}])
    first = decide(canary, {}, at(0, role(4), role(0, version=None)), mode="forward")
    again = decide(
        canary, first.progress, at(1, role(4), role(1, 0)), mode="forward", intent="promote"
    )
    assert again.step_index == 0 and not again.route
    assert any(e["message"].startswith("promote ignored") for e in again.events)


def test_promote_full_skips_every_remaining_step():
    fleet = Fleet(stable=4)
    _, _, progress = ladder(fleet, spec(), stop=lambda d: d.step_index == 1)
    full = decide(spec(), progress, fleet.observe(), mode="forward", intent="promote_full")
    assert full.step_index == 5 and full.scale == {"canary": 4}
    assert not full.route  # 100% only once the 4 new instances are ready
    last, _, _ = run(fleet, spec(), full.progress, mode="forward", limit=20)
    assert last.outcome == "done" and fleet.weights == CANARY_ONLY


def test_set_canary_scale_sizes_the_new_release_independently_of_the_weight():
    canary = spec(
        [
            {"set_canary_scale": {"replicas": 3}},
            {"set_weight": 10},
            {"pause": {"duration": "10s"}},
            {"set_canary_scale": {"weight": 50}},
            {"set_weight": 20},
            {"pause": {"duration": "10s"}},
            {"set_canary_scale": {"match_traffic_weight": True}},
            {"pause": {"duration": "10s"}},
        ]
    )
    fleet = Fleet(stable=4)
    trace, last, _ = ladder(fleet, canary)
    assert last.outcome == "done"
    sizes = [d.scale["canary"] for _, d in trace if "canary" in d.scale]
    assert sizes == [3, 2, 1, 4]  # fixed 3, then 50% of 4, then matching 20% (1), then 4


def test_a_fixed_canary_size_is_used_from_the_start():
    canary = spec([{"set_weight": 5}], canary_replicas=2)
    first = decide(canary, {}, at(0, role(4), role(0, version=None)), mode="forward")
    assert first.scale == {"canary": 2}


def test_the_old_release_is_brought_up_to_stable_replicas_if_it_has_fewer():
    first = decide(spec(), {}, at(0, role(2), role(0, version=None)), mode="forward")
    assert first.scale == {"stable": 4, "canary": 1}


@pytest.mark.parametrize("stop_at", range(0, 9))
def test_an_abort_anywhere_before_the_promotion_is_restored_on_the_first_decision(stop_at):
    fleet = Fleet(stable=4)
    canary = spec()
    _, last, progress = ladder(
        fleet,
        canary,
        limit=stop_at + 1,
        must_stop=False,
        stop=lambda d: d.route and d.weights == CANARY_ONLY,
    )
    if last.route and last.weights == CANARY_ONLY:
        pytest.skip("promoted already")
    assert routing_before_observing(canary, progress, mode="rollback") == RoutePlan(STABLE_ONLY)
    canary_before = fleet.role("canary").desired
    back = decide(canary, progress, fleet.observe(), mode="rollback")
    assert back.route_plan == RoutePlan(STABLE_ONLY)  # weight 0 and no header rules, at once
    assert back.outcome == "restored" and back.scale == {}
    assert back.cleanup_after == (30 if canary_before else None)
    assert back.events[0]["message"] == "rollback started: switching back to the old release"


def test_an_abort_during_the_promotion_scales_the_old_release_back_before_routing_to_it():
    fleet = Fleet(stable=4)
    canary = spec()
    _, last, progress = ladder(fleet, canary, stop=lambda d: "stable" in d.scale)
    assert routing_before_observing(canary, progress, mode="rollback") is None
    trace = []
    last, _, _ = run(
        fleet,
        canary,
        progress,
        mode="rollback",
        limit=30,
        check=lambda obs, d: trace.append((obs, d)),
    )
    assert trace[0][1].scale == {"stable": 4}
    for obs, d in trace:
        if d.route and d.weights == STABLE_ONLY:
            assert obs.stable.ready == 4
    assert last.outcome == "restored" and fleet.weights == STABLE_ONLY


def test_a_canary_that_never_gets_ready_fails_at_the_deadline_but_pauses_do_not():
    fleet = Fleet(stable=4, failing=True)
    _, last, _ = ladder(fleet, spec(progress_deadline="20s"))
    assert last.failure.startswith("no progress for 20 s (progress deadline): 0 instance(s)")
    long_pause = spec([{"set_weight": 10}, {"pause": {"duration": "5m"}}], progress_deadline="20s")
    trace, last, _ = ladder(Fleet(stable=4), long_pause)
    assert last.outcome == "done" and trace[-1][0].now > 300


def test_steps_are_described_with_sizes_and_a_final_promotion():
    from strategies.spec import describe_steps

    assert describe_steps(spec()) == [
        "set weight 10%: 1 instance of the new release, 4 of the old one",
        "pause 30s",
        "set weight 50%: 2 instances of the new release, 4 of the old one",
        "pause 30s",
        "set weight 100%: 4 instances of the new release, 4 of the old one",
        "promote: 4 instances of the new release take 100%, then the old release is scaled down",
    ]
