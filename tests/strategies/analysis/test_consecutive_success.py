"""Argo's ``consecutiveSuccessLimit`` (with ``failureLimit``) and ``measurementRetention`` over
a pure run: the run is driven tick by tick with a fetch answering from a list of values, and
the history handed back is what the caller stores (cut to the retention as runs.py does)."""

from __future__ import annotations

import pytest

from strategies.analysis.run import advance, new_state
from strategies.analysis.template import TemplateError, normalise


def metric(**fields):
    return {
        "name": "ok",
        "provider": "prometheus",
        "address": "http://127.0.0.1:9090",
        "query": "up",
        "success_condition": "canary >= 1",
        "interval": 1,
        **fields,
    }


def drive(template, values, *, keep=None, ticks=None):
    """Tick the run once per second; the canary's value at each measurement comes from
    ``values``. Returns (verdict, measurements taken, the history stored)."""
    values = list(values)
    state = new_state(template, 0.0)
    history: dict[str, list] = {}
    taken = 0

    def fetch(metric, action, cursor, start, end):
        if action == "begin":
            return {"cursor": {}}
        return {"baseline": {"values": []}, "canary": {"values": [values.pop(0)]}}

    verdict = None
    for now in range(ticks or len(values) + 2):
        state, new, verdict = advance(template, state, history, float(now), fetch)
        for name, _index, result in new:
            history.setdefault(name, []).append(result)
            taken += 1
            if keep:
                history[name] = history[name][-keep:]
        if verdict.phase != "running":
            break
    return verdict, taken, history


def test_the_metric_succeeds_once_that_many_measurements_in_a_row_succeed():
    t = normalise({"metrics": [metric(count=10, failure_limit=3, consecutive_success_limit=3)]})
    verdict, taken, _ = drive(t, [0, 1, 0, 1, 1, 1, 0, 0, 0, 0])
    assert verdict.decision == "pass"
    assert taken == 6  # it stopped measuring at the third success in a row, before its count


def test_failures_past_the_failure_limit_still_fail_it_first():
    t = normalise({"metrics": [metric(count=10, failure_limit=1, consecutive_success_limit=3)]})
    verdict, taken, _ = drive(t, [0, 1, 0, 1, 1, 1])
    assert (verdict.decision, taken) == ("fail", 3)


def test_count_spent_without_either_limit_is_inconclusive():
    t = normalise({"metrics": [metric(count=4, failure_limit=3, consecutive_success_limit=3)]})
    verdict, taken, _ = drive(t, [1, 1, 0, 1])
    assert (verdict.decision, taken) == ("inconclusive", 4)
    assert "consecutive_success_limit" in verdict.reason


def test_with_no_failure_limit_count_spent_without_the_successes_fails():
    t = normalise({"metrics": [metric(count=4, failure_limit=-1, consecutive_success_limit=2)]})
    verdict, _, _ = drive(t, [0, 0, 0, 1])
    assert verdict.decision == "fail" and "2 successful in a row" in verdict.reason
    passed, taken, _ = drive(t, [0, 0, 1, 1])
    assert (passed.decision, taken) == ("pass", 4)


def test_the_argo_spelling_is_read_and_wrong_uses_are_named():
    (m,) = normalise({"metrics": [{**metric(count=5), "consecutiveSuccessLimit": 2}]})["metrics"]
    assert m["consecutive_success_limit"] == 2
    with pytest.raises(TemplateError) as caught:
        normalise({"metrics": [metric(count=2, consecutive_success_limit=3)]})
    assert caught.value.errors[0].path == "metrics[0].consecutive_success_limit"
    with pytest.raises(TemplateError) as caught:
        normalise({"metrics": [metric(count=2, failure_limit=-1)]})
    assert "needs a consecutive_success_limit" in caught.value.errors[0].message
    with pytest.raises(TemplateError) as caught:
        normalise(
            {"metrics": [{"name": "e", "query": "error_rate", "consecutive_success_limit": 2}]}
        )
    assert "threshold" in caught.value.errors[0].message


def test_retention_cuts_what_is_stored_and_changes_no_verdict():
    values = [1, 0, 1, 1, 0, 1, 0, 1, 1, 1]
    whole = normalise({"metrics": [metric(count=10, failure_limit=2)]})
    cut = normalise({"metrics": [metric(count=10, failure_limit=2, measurement_retention=2)]})
    full_verdict, full_taken, full_history = drive(whole, values)
    cut_verdict, cut_taken, cut_history = drive(cut, values, keep=2)
    assert (full_verdict.decision, full_taken) == (cut_verdict.decision, cut_taken) == ("fail", 7)
    assert len(full_history["ok"]) == 7 and len(cut_history["ok"]) == 2
    assert cut_verdict.metrics["ok"]["failed"] == 3  # counted from the state, not the 2 kept
    passing = [1] * 5
    verdict, taken, history = drive(
        normalise({"metrics": [metric(count=5, measurement_retention=1)]}), passing, keep=1
    )
    assert (verdict.decision, taken, len(history["ok"])) == ("pass", 5, 1)
    assert verdict.metrics["ok"]["measurements"] == 5
