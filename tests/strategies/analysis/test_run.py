"""Argo Rollouts' semantics over a run's measurements, and the score at the end."""

from __future__ import annotations

from strategies.analysis.run import advance, evaluate, new_state
from strategies.analysis.series import Series
from strategies.analysis.template import normalise


def template(*metrics, judge=None):
    raw = {"metrics": list(metrics)}
    if judge:
        raw["judge"] = judge
    return normalise(raw)


def result(phase, *, insufficient=False, permanent=False, why="because"):
    return {
        "phase": phase,
        "insufficient": insufficient,
        "permanent": permanent,
        "why": why,
        "critical": True,
    }


def seq(**fields):
    return {"name": "errors", "query": "error_rate", "interval": 1, "count": 5, **fields}


def test_a_failed_critical_measurement_fails_the_run_at_once():
    t = template(seq())
    verdict = evaluate(t, {"errors": [result("successful"), result("failed", why="worse")]})
    assert (verdict.decision, verdict.phase) == ("fail", "failed")
    assert "worse" in verdict.reason


def test_failure_limit_tolerates_that_many_failures():
    t = template(seq(failure_limit=1))
    assert evaluate(t, {"errors": [result("failed")]}).decision == "running"
    assert evaluate(t, {"errors": [result("failed")] * 2}).decision == "fail"


def test_errors_in_a_row_past_the_limit_abort_and_a_permanent_error_at_once():
    t = template(seq(consecutive_error_limit=2))
    errors = [result("error")] * 2
    assert evaluate(t, {"errors": errors}).decision == "running"
    verdict = evaluate(t, {"errors": [*errors, result("error")]})
    assert (verdict.decision, verdict.phase) == ("fail", "error")
    assert evaluate(t, {"errors": [result("error", permanent=True)]}).phase == "error"


def test_an_inconclusive_measurement_pauses_unless_the_limit_allows_it():
    t = template(seq())
    assert evaluate(t, {"errors": [result("inconclusive")]}).decision == "inconclusive"
    lenient = template(seq(inconclusive_limit=1))
    assert evaluate(lenient, {"errors": [result("inconclusive")]}).decision == "running"


def test_waiting_for_data_counts_for_nothing_until_the_last_measurement():
    t = template(seq(count=3, max_duration=3))
    waiting = result("inconclusive", insufficient=True, why="Not enough data yet: canary 3")
    assert evaluate(t, {"errors": [waiting, waiting]}).decision == "running"
    verdict = evaluate(t, {"errors": [waiting] * 3})
    assert verdict.decision == "inconclusive" and "canary 3" in verdict.reason


def test_dry_run_metrics_never_decide():
    t = template(seq(dry_run=True, count=1), {"name": "lat", "query": "latency", "count": 1})
    verdict = evaluate(t, {"errors": [result("failed")], "lat": [result("successful")]})
    assert verdict.decision == "pass"


def test_non_critical_failures_only_lower_the_final_score():
    t = template(
        seq(count=1),
        {"name": "lat", "query": "latency", "test": "mann_whitney", "count": 2},
        judge={"pass_score": 95, "marginal_score": 40},
    )
    running = evaluate(t, {"errors": [result("successful")], "lat": [result("failed")]})
    assert running.decision == "running"
    final = evaluate(
        t, {"errors": [result("successful")], "lat": [result("failed"), result("failed")]}
    )
    assert final.decision == "inconclusive" and final.score["score"] == 50


def test_background_analysis_runs_until_stopped():
    t = template(seq(count=None))
    history = {"errors": [result("successful")] * 50}
    assert evaluate(t, history).decision == "running"
    assert evaluate(t, history, stopped=True).decision == "pass"
    assert evaluate(t, {}, stopped=True).decision == "inconclusive"


def test_advance_begins_the_window_then_measures_on_the_interval():
    t = template(seq(initial_delay=2, margin=0.2))  # 0 of 100 errors: within 20 points
    calls = []

    def fetch(metric, action, cursor, start, end):
        calls.append((action, start, end))
        if action == "begin":
            return {"cursor": {"at": start}}
        return {
            "baseline": Series.from_counts(1000, 0).to_dict(),
            "canary": Series.from_counts(100, 0).to_dict(),
        }

    state, history = new_state(t, 100.0), {}
    for now in (101.0, 102.0, 102.5, 103.0, 104.0, 105.0, 106.0, 107.0, 108.0):
        state, new, verdict = advance(t, state, history, now, fetch)
        for name, _, r in new:
            history.setdefault(name, []).append(r)
    assert calls[0] == ("begin", 102.0, 102.0)
    assert [c[2] for c in calls[1:]] == [103.0, 104.0, 105.0, 106.0, 107.0]
    assert verdict.decision == "pass"
    assert len(history["errors"]) == 5


def test_a_provider_error_is_an_error_measurement():
    t = template(seq())

    def fetch(metric, action, cursor, start, end):
        if action == "begin":
            return {"cursor": {}}
        return {"error": "the fleet agent is not answering", "permanent": False}

    state, history = new_state(t, 0.0), {}
    for now in (0.0, 1.0):
        state, new, verdict = advance(t, state, history, now, fetch)
        for name, _, r in new:
            history.setdefault(name, []).append(r)
    assert history["errors"][0]["phase"] == "error"
    assert "not answering" in history["errors"][0]["why"]
    assert verdict.decision == "running"
