"""The engine and analysis: a canary analysis step, canary background analysis, blue-green
pre-/post-promotion analysis and a rolling update's analysis after each batch, against a
simulated fleet whose analyses decide as each test says. The engine asks for a run once (by key),
holds while it measures, moves on when it passes, fails (so the caller rolls back) when it
fails, and waits for a person when it is inconclusive."""

from __future__ import annotations

from strategies.engine import RoutePlan, decide, routing_before_observing
from strategies.spec import normalise

from .fleet import NEVER, Fleet, run

STABLE_ONLY = {"stable": 100, "canary": 0}
CANARY_ONLY = {"stable": 0, "canary": 100}
FAST = {"interval": "100ms"}
ERRORS = {"template": "error-rate", "args": {"max": "0.05"}}


def outcome(verdicts: dict[str, tuple[int, str]]):
    """Each key decides after the ticks and with the verdict given (others never decide)."""
    return lambda key, request: verdicts.get(key, (NEVER, "pass"))


def canary(*steps, **extra) -> dict:
    raw = {"kind": "canary", "steps": list(steps), "stable_replicas": 2, "health": FAST}
    return normalise({**raw, **extra})


def until(predicate):
    return lambda d: predicate(d) or d.outcome is not None or d.failure is not None


def asked(decision) -> list[str]:
    return [request["key"] for request in decision.start_analysis or []]


# --- canary analysis step -------------------------------------------------------------------


def test_an_analysis_step_asks_for_its_run_once_then_holds_the_weight_while_it_measures():
    spec = canary({"set_weight": 20}, {"analysis": ERRORS}, {"set_weight": 50})
    fleet = Fleet(stable=2, analysis_outcome=outcome({}))
    first, progress, _ = run(
        fleet, spec, {}, mode="forward", limit=20, stop=until(lambda d: d.start_analysis)
    )
    assert first.start_analysis == [
        {"key": "step-1", "template": "error-rate", "args": {"max": "0.05"}, "step_index": 1}
    ]
    assert fleet.weights == {"stable": 80, "canary": 20}  # routed before (or as) it starts
    assert first.step_index == 1 and first.waiting_for_promotion is False

    seen = []
    last, progress, _ = run(
        fleet,
        spec,
        progress,
        mode="forward",
        limit=10,
        must_stop=False,
        check=lambda obs, d: seen.append(d),
    )
    assert last.outcome is None and last.failure is None
    assert all(d.start_analysis is None and d.wait <= 5.0 for d in seen)
    assert all(d.step_index == 1 and not d.route for d in seen)
    assert last.message == (
        "step 2 of 4: analysis 'error-rate' (max=0.05): Measuring.; "
        "20% of requests on the new release"
    )
    assert fleet.analysis_starts == ["step-1"]
    assert fleet.weights == {"stable": 80, "canary": 20}


def test_a_passing_analysis_step_moves_on_to_the_next_step():
    spec = canary({"set_weight": 20}, {"analysis": ERRORS}, {"set_weight": 50})
    fleet = Fleet(stable=2, analysis_outcome=outcome({"step-1": (3, "pass")}))
    routed = []
    last, _, _ = run(
        fleet,
        spec,
        {},
        mode="forward",
        limit=100,
        check=lambda obs, d: d.route and routed.append(d.weights["canary"]),
    )
    assert last.outcome == "done"
    assert routed == [0, 20, 50, 100]
    assert fleet.analysis_starts == ["step-1"] and fleet.analysis_stops == []


def test_a_failing_analysis_step_fails_the_rollout_naming_the_template_and_the_metric():
    spec = canary({"set_weight": 20}, {"analysis": ERRORS}, {"set_weight": 50})
    fleet = Fleet(stable=2, analysis_outcome=outcome({"step-1": (2, "fail")}))
    last, progress, _ = run(fleet, spec, {}, mode="forward", limit=100)
    assert last.failure == (
        "analysis 'error-rate' (step 2) failed: errors: the canary's error rate 50% is clearly "
        "worse than the baseline's 0%."
    )
    assert last.message == last.failure
    assert (last.route, last.scale, last.start_analysis) == (False, {}, None)
    assert last.events[-1] == {"kind": "failure", "message": last.failure, "data": {}}
    # the rollback is a switch back, known before looking: 100% to the old release at once
    assert routing_before_observing(spec, progress, mode="rollback") == RoutePlan(STABLE_ONLY)
    back = decide(spec, progress, fleet.observe(), mode="rollback")
    assert back.route_plan == RoutePlan(STABLE_ONLY) and back.outcome == "restored"


def test_an_inconclusive_analysis_step_waits_for_a_person_and_promote_continues_past_it():
    spec = canary({"set_weight": 20}, {"analysis": ERRORS}, {"set_weight": 50})
    fleet = Fleet(stable=2, analysis_outcome=outcome({"step-1": (2, "inconclusive")}))
    waiting, progress, _ = run(
        fleet, spec, {}, mode="forward", limit=100, stop=until(lambda d: d.waiting_for_promotion)
    )
    assert waiting.waiting_for_promotion and waiting.failure is None
    assert waiting.message == (
        "step 2 of 4: analysis inconclusive (step 2): errors: Not enough data yet: canary 4 of "
        "the 50 requests needed per side. Promote to continue past it, or roll back; "
        "20% of requests on the new release"
    )
    # paused, it stays so: nothing changes
    held = decide(spec, progress, fleet.observe(), mode="paused")
    assert (held.route, held.scale, held.failure) == (False, {}, None)
    progress = held.progress
    # a forward tick without a promote (a resume) waits again
    again = decide(spec, progress, fleet.observe(), mode="forward")
    assert again.waiting_for_promotion and again.step_index == 1
    promoted = decide(spec, progress, fleet.observe(), mode="forward", intent="promote")
    assert promoted.weights == {"stable": 50, "canary": 50}  # the next step, at once
    assert not promoted.waiting_for_promotion
    assert promoted.stop_analysis is None  # it had ended
    assert promoted.events[0]["message"].startswith("promoted: analysis 'error-rate'")
    fleet.apply(promoted)
    last, _, _ = run(fleet, spec, promoted.progress, mode="forward", limit=100)
    assert last.outcome == "done"


def test_promote_during_a_running_analysis_step_stops_it_and_moves_on():
    spec = canary({"set_weight": 20}, {"analysis": ERRORS}, {"set_weight": 50})
    fleet = Fleet(stable=2, analysis_outcome=outcome({}))
    _, progress, _ = run(
        fleet, spec, {}, mode="forward", limit=20, stop=until(lambda d: d.start_analysis)
    )
    fleet.advance(1.0)
    promoted = decide(spec, progress, fleet.observe(), mode="forward", intent="promote")
    assert promoted.stop_analysis == ["step-1"]
    assert promoted.weights == {"stable": 50, "canary": 50}
    assert "watching" not in promoted.progress


def test_an_operator_paused_in_the_middle_of_an_analysis_still_rolls_back_when_it_fails():
    spec = canary({"set_weight": 20}, {"analysis": ERRORS}, {"set_weight": 50})
    fleet = Fleet(stable=2, analysis_outcome=outcome({"step-1": (4, "fail")}))
    _, progress, _ = run(
        fleet, spec, {}, mode="forward", limit=20, stop=until(lambda d: d.start_analysis)
    )
    last, _, ticks = run(fleet, spec, progress, mode="paused", limit=20)
    assert last.failure.startswith("analysis 'error-rate' (step 2) failed: errors:")
    assert 3 <= ticks <= 5
    assert last.scale == {} and not last.route


def test_the_deadline_clock_stops_while_an_analysis_measures():
    spec = canary(
        {"set_weight": 20}, {"analysis": ERRORS}, {"set_weight": 50}, progress_deadline="5s"
    )
    fleet = Fleet(stable=2, analysis_outcome=outcome({}))
    last, _, _ = run(fleet, spec, {}, mode="forward", limit=60, must_stop=False)
    assert fleet.now - 1_000 > 20 and last.failure is None


# --- canary background analysis ----------------------------------------------------------------


def test_background_analysis_starts_at_its_step_and_is_stopped_when_the_new_release_takes_all():
    spec = canary(
        {"set_weight": 10},
        {"pause": {"duration": "2s"}},
        {"set_weight": 50},
        {"pause": {"duration": "2s"}},
        analysis={"template": "error-rate", "start_at_step": 2},
    )
    fleet = Fleet(stable=2, analysis_outcome=outcome({}))
    starts = []

    def check(obs, d):
        if d.start_analysis:
            starts.append((d.start_analysis, d.step_index, fleet.weights))
        if d.stop_analysis:
            starts.append((d.stop_analysis, d.step_index, fleet.weights))

    last, _, _ = run(fleet, spec, {}, mode="forward", limit=200, check=check)
    assert last.outcome == "done"
    background = {"key": "background", "template": "error-rate", "args": {}, "step_index": None}
    assert starts == [
        ([background], 3, {"stable": 50, "canary": 50}),  # as step 2 (index) routed 50%
        (["background"], 4, CANARY_ONLY),  # stopped on the tick that routed 100%
    ]


def test_background_analysis_failing_at_any_point_fails_the_rollout():
    spec = canary(
        {"set_weight": 10},
        {"pause": {}},
        {"set_weight": 50},
        analysis={"template": "error-rate"},
    )
    fleet = Fleet(stable=2, analysis_outcome=outcome({"background": (6, "fail")}))
    waiting, progress, _ = run(
        fleet, spec, {}, mode="forward", limit=100, stop=until(lambda d: d.waiting_for_promotion)
    )
    assert waiting.failure is None  # at the pause, waiting for a person
    last, _, _ = run(fleet, spec, progress, mode="paused", limit=20)
    assert last.failure.startswith("analysis 'error-rate' (background) failed: errors:")
    assert routing_before_observing(spec, last.progress, mode="rollback") == RoutePlan(STABLE_ONLY)


def test_inconclusive_background_analysis_holds_everything_until_a_person_accepts_it():
    spec = canary(
        {"set_weight": 10},
        {"pause": {"duration": "30s"}},
        {"set_weight": 50},
        analysis={"template": "error-rate"},
    )
    fleet = Fleet(stable=2, analysis_outcome=outcome({"background": (3, "inconclusive")}))
    waiting, progress, _ = run(
        fleet, spec, {}, mode="forward", limit=100, stop=until(lambda d: d.waiting_for_promotion)
    )
    assert waiting.step_index == 1
    assert "analysis inconclusive (background)" in waiting.message
    fleet.advance(60.0)  # the pause's time is up, but nothing moves while it holds
    held = decide(spec, progress, fleet.observe(), mode="forward")
    assert held.waiting_for_promotion and held.step_index == 1 and not held.route
    accepted = decide(spec, progress, fleet.observe(), mode="forward", intent="promote")
    assert not accepted.waiting_for_promotion
    messages = [e["message"] for e in accepted.events]
    assert "promoted: the inconclusive background analysis accepted" in messages
    assert not any(m.startswith("promoted: pause") for m in messages)  # only the analysis
    assert accepted.progress["background"] == "off"


# --- blue-green -----------------------------------------------------------------------------


def blue_green(**extra) -> dict:
    raw = {
        "kind": "blue_green",
        "replicas": 2,
        "preview_replicas": 1,
        "smoke": [{"path": "/health"}],
        "auto_promote": 0,
        "scale_down_delay": 0,
        "health": FAST,
    }
    return normalise({**raw, **extra})


def test_pre_promotion_analysis_runs_after_the_smoke_checks_and_must_pass_before_the_switch():
    spec = blue_green(pre_promotion_analysis={"template": "preview-check"})
    fleet = Fleet(stable=2, analysis_outcome=outcome({"pre-promotion": (3, "pass")}))
    order = []

    def check(obs, d):
        if d.run_smoke:
            order.append("smoke")
        order.extend(f"start {key}" for key in asked(d))
        if d.route and d.weights == CANARY_ONLY:
            order.append("switch")
            assert obs.analysis["pre-promotion"]["decision"] == "pass"

    last, _, _ = run(fleet, spec, {}, mode="forward", limit=100, check=check)
    assert last.outcome == "done"
    assert order == ["smoke", "start pre-promotion", "switch"]


def test_a_failed_pre_promotion_analysis_fails_before_anything_was_switched():
    spec = blue_green(pre_promotion_analysis={"template": "preview-check"})
    fleet = Fleet(stable=2, analysis_outcome=outcome({"pre-promotion": (2, "fail")}))
    last, progress, _ = run(fleet, spec, {}, mode="forward", limit=100)
    assert last.failure.startswith("analysis 'preview-check' (pre-promotion) failed:")
    assert fleet.weights == STABLE_ONLY and fleet.preview  # never switched
    assert routing_before_observing(spec, progress, mode="rollback") == RoutePlan(STABLE_ONLY)


def test_an_inconclusive_pre_promotion_analysis_waits_and_a_promote_goes_on_to_the_switch():
    spec = blue_green(pre_promotion_analysis={"template": "preview-check"})
    fleet = Fleet(stable=2, analysis_outcome=outcome({"pre-promotion": (2, "inconclusive")}))
    waiting, progress, _ = run(
        fleet, spec, {}, mode="forward", limit=100, stop=until(lambda d: d.waiting_for_promotion)
    )
    assert waiting.step_index == 1
    assert waiting.message.startswith("analysis inconclusive (pre-promotion): errors: Not enough")
    last, _, _ = run(
        fleet,
        spec,
        progress,
        mode="forward",
        limit=100,
        intent=lambda tick: "promote" if tick == 1 else None,
    )
    assert last.outcome == "done" and fleet.weights == CANARY_ONLY


def test_post_promotion_analysis_keeps_the_old_side_until_it_passes():
    spec = blue_green(post_promotion_analysis={"template": "ceiling"})
    fleet = Fleet(stable=2, analysis_outcome=outcome({"post-promotion": (6, "pass")}))
    switched = {}

    def check(obs, d):
        if d.route and d.weights == CANARY_ONLY:
            switched["tick"] = fleet.tick
            assert asked(d) == ["post-promotion"]  # starts on the tick that switches
        if d.scale.get("stable") == 0:
            assert obs.analysis["post-promotion"]["decision"] == "pass"
            assert fleet.tick >= switched["tick"] + 6

    last, _, _ = run(fleet, spec, {}, mode="forward", limit=100, check=check)
    assert last.outcome == "done"


def test_a_failed_post_promotion_analysis_switches_back():
    spec = blue_green(post_promotion_analysis={"template": "ceiling"})
    fleet = Fleet(stable=2, analysis_outcome=outcome({"post-promotion": (3, "fail")}))
    last, progress, _ = run(fleet, spec, {}, mode="forward", limit=100)
    assert last.failure.startswith("analysis 'ceiling' (post-promotion) failed:")
    assert fleet.weights == CANARY_ONLY  # it had switched
    assert fleet.role("stable").ready == 2  # the old side was kept
    assert routing_before_observing(spec, progress, mode="rollback") == RoutePlan(STABLE_ONLY)


def test_an_inconclusive_post_promotion_analysis_waits_for_a_person():
    spec = blue_green(post_promotion_analysis={"template": "ceiling"})
    fleet = Fleet(stable=2, analysis_outcome=outcome({"post-promotion": (2, "inconclusive")}))
    waiting, progress, _ = run(
        fleet, spec, {}, mode="forward", limit=100, stop=until(lambda d: d.waiting_for_promotion)
    )
    assert waiting.step_index == 5 and fleet.role("stable").desired == 2
    promoted = decide(spec, progress, fleet.observe(), mode="forward", intent="promote")
    assert promoted.scale == {"stable": 0}


# --- rolling --------------------------------------------------------------------------------


def rolling(**extra) -> dict:
    raw = {"kind": "rolling", "replicas": 3, "batch_size": 1, "max_surge": 1, "health": FAST}
    return normalise({**raw, **extra, "analysis": ERRORS})


def test_each_batch_but_the_last_ends_with_an_analysis_the_next_batch_waits_for():
    spec = rolling()
    fleet = Fleet(
        stable=3, analysis_outcome=outcome({"batch-1": (3, "pass"), "batch-2": (2, "pass")})
    )

    def check(obs, d):
        for key in asked(d):
            batch = int(key.split("-")[1])
            # asked once the batch is complete: its instances are available, the old ones gone
            assert obs.canary.available >= batch and obs.stable.desired <= 3 - batch
        if obs.canary.desired >= 2 or d.scale.get("canary", 0) >= 2:
            assert obs.analysis.get("batch-1", {}).get("decision") == "pass"

    last, _, _ = run(fleet, spec, {}, mode="forward", limit=200, check=check)
    assert last.outcome == "done"
    assert fleet.analysis_starts == ["batch-1", "batch-2"]


def test_a_failed_batch_analysis_fails_the_rollout_and_an_inconclusive_one_waits():
    fleet = Fleet(stable=3, analysis_outcome=outcome({"batch-1": (2, "fail")}))
    last, _, _ = run(fleet, rolling(), {}, mode="forward", limit=100)
    assert last.failure.startswith("analysis 'error-rate' (batch-1) failed: errors:")

    fleet = Fleet(stable=3, analysis_outcome=outcome({"batch-1": (2, "inconclusive")}))
    waiting, progress, _ = run(
        fleet,
        rolling(),
        {},
        mode="forward",
        limit=100,
        stop=until(lambda d: d.waiting_for_promotion),
    )
    assert "analysis inconclusive (batch-1)" in waiting.message
    promoted = decide(rolling(), progress, fleet.observe(), mode="forward", intent="promote")
    assert promoted.progress["batch"] == 2 and not promoted.waiting_for_promotion


def test_promote_skips_a_running_batch_analysis():
    fleet = Fleet(stable=3, analysis_outcome=outcome({}))
    _, progress, _ = run(
        fleet, rolling(), {}, mode="forward", limit=50, stop=until(lambda d: d.start_analysis)
    )
    fleet.advance(1.0)
    promoted = decide(rolling(), progress, fleet.observe(), mode="forward", intent="promote")
    assert promoted.stop_analysis == ["batch-1"] and promoted.progress["batch"] == 2


def test_a_reference_with_failure_limit_and_interval_asks_for_its_run_with_those_overrides():
    """Flagger's threshold and interval (strategies.flagger) travel with the start request, so
    the run measures every interval and rolls back at the threshold-th failed check."""
    background = {**ERRORS, "failure_limit": 4, "interval": "30s"}
    spec = canary({"set_weight": 20}, {"pause": {"duration": 60}}, analysis=background)
    fleet = Fleet(stable=2, analysis_outcome=outcome({}))
    first, _, _ = run(
        fleet, spec, {}, mode="forward", limit=20, stop=until(lambda d: d.start_analysis)
    )
    assert first.start_analysis == [
        {
            "key": "background",
            "template": "error-rate",
            "args": {"max": "0.05"},
            "step_index": None,
            "overrides": {"failure_limit": 4, "interval": 30.0},
        }
    ]


def test_each_template_of_a_reference_gets_its_own_args_and_failure_limit():
    """Flagger's custom metrics (strategies.flagger): one reference to several templates, each
    started with the shared args merged with its own (``per_template``)."""
    background = {
        "templates": ["error-rate", "latency"],
        "args": {"shared": "1"},
        "failure_limit": 2,
        "per_template": {"latency": {"args": {"max": "500"}, "failure_limit": 0}},
    }
    spec = canary({"set_weight": 20}, {"pause": {"duration": 60}}, analysis=background)
    fleet = Fleet(stable=2, analysis_outcome=outcome({}))
    first, _, _ = run(
        fleet, spec, {}, mode="forward", limit=20, stop=until(lambda d: d.start_analysis)
    )
    assert [(r["template"], r["args"], r["overrides"]) for r in first.start_analysis] == [
        ("error-rate", {"shared": "1"}, {"failure_limit": 2}),
        ("latency", {"shared": "1", "max": "500"}, {"failure_limit": 0}),
    ]
