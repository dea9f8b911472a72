"""Pass means "not worse by more than the margin": shown, not assumed; undecided metrics look on
until their maximum duration and then pause the run, never pass it."""

from __future__ import annotations

import pytest

from strategies.analysis.classify import measure
from strategies.analysis.run import advance, evaluate, new_state
from strategies.analysis.series import Series
from strategies.analysis.template import TemplateError, normalise


def errors(**fields):
    raw = {"name": "errors", "query": "error_rate", "interval": 1, "count": 5, **fields}
    return normalise({"metrics": [raw]})


def test_defaults_are_written_into_the_template():
    [e] = errors()["metrics"]
    assert (e["margin"], e["margin_ratio"], e["confidence"]) == (0.01, None, 0.95)
    assert (e["max_duration"], e["max_count"]) == (300.0, 300)
    [lat] = normalise({"metrics": [{"name": "l", "query": "latency"}]})["metrics"]
    assert (lat["test"], lat["margin"], lat["percentile"], lat["critical"]) == (
        "quantile",
        0.2,
        0.95,
        True,
    )
    [mw] = normalise({"metrics": [{"name": "m", "query": "latency", "test": "mann_whitney"}]})[
        "metrics"
    ]
    assert (mw["confidence"], mw["max_count"]) == (0.98, None)
    assert normalise(errors()) == errors()  # normalising twice changes nothing


def test_a_margin_ratio_belongs_to_the_error_rate_test_only():
    with pytest.raises(TemplateError, match="margin_ratio"):
        normalise({"metrics": [{"name": "l", "query": "latency", "margin_ratio": 2}]})


def test_no_errors_yet_is_not_a_pass_until_the_data_rule_out_the_margin():
    [metric] = errors()["metrics"]
    early = measure(metric, Series.from_counts(2000, 0), Series.from_counts(100, 0))
    assert early["phase"] == "inconclusive" and early["undecided"]
    assert "not yet below the margin of 1 point;" in early["why"]
    late = measure(metric, Series.from_counts(20000, 0), Series.from_counts(1000, 0), early)
    assert late["phase"] == "successful"
    assert "Within the margin" in late["why"]
    assert late["interval"]["upper"] < 0.01


def test_evidence_of_a_difference_within_the_margin_does_not_roll_back():
    [metric] = errors(margin=0.05)["metrics"]
    result = measure(metric, Series.from_counts(3800, 0), Series.from_counts(200, 4))
    assert result["effect"]["e_value"] >= 200  # the canary fails more often, for sure...
    assert result["phase"] == "inconclusive" and result["undecided"]  # ...by 2 points, not 5
    assert "not yet beyond the margin" in result["why"]


def test_a_noisy_service_passes_within_a_ratio_of_its_error_rate():
    [metric] = errors(margin_ratio=2.0)["metrics"]
    result = None
    for look in range(1, 301):  # 3% errors on both sides, 5 canary req/s
        result = measure(
            metric,
            Series.from_counts(95 * look, round(95 * look * 0.03)),
            Series.from_counts(5 * look, round(5 * look * 0.03)),
            result,
        )
        if result["phase"] != "inconclusive":
            break
    assert result["phase"] == "successful" and "odds ratio < 2" in result["why"]


def counts(total_per_s: tuple[int, int], errors_per_s: tuple[float, float]):
    def fetch(metric, action, cursor, start, end):
        if action == "begin":
            return {"cursor": {}}
        seconds = end - start
        b, c = (round(n * seconds) for n in total_per_s)
        return {
            "baseline": Series.from_counts(b, round(b * errors_per_s[0])).to_dict(),
            "canary": Series.from_counts(c, round(c * errors_per_s[1])).to_dict(),
        }

    return fetch


def drive(template, fetch, seconds: int):
    state, history, verdict = new_state(template, 0.0), {}, None
    for now in range(0, seconds + 1):
        state, new, verdict = advance(template, state, history, float(now), fetch)
        for name, _, result in new:
            history.setdefault(name, []).append(result)
        if verdict.decision != "running":
            return verdict, history, now
    return verdict, history, seconds


def test_an_undecided_metric_looks_past_its_count_up_to_its_maximum_then_pauses():
    template = errors(max_duration=60)
    # 0.5 points worse: never beyond the 1-point margin, never shown within it at this rate
    verdict, history, now = drive(template, counts((95, 5), (0.0, 0.005)), 200)
    assert verdict.decision == "inconclusive"
    assert len(history["errors"]) == 60 and now == 60
    assert "inconclusive at its maximum duration (60 looks)" in verdict.reason


def test_a_clean_canary_passes_once_shown_within_the_margin_after_its_count():
    template = errors(margin=0.05)
    verdict, history, _ = drive(template, counts((950, 50), (0.0, 0.0)), 300)
    assert verdict.decision == "pass"
    assert 5 <= len(history["errors"]) < 300
    assert history["errors"][-1]["phase"] == "successful"


def test_a_stopped_run_with_an_undecided_metric_is_inconclusive_not_passed():
    template = errors()
    undecided = {"phase": "inconclusive", "undecided": True, "why": "not yet", "critical": True}
    verdict = evaluate(template, {"errors": [undecided] * 7}, stopped=True)
    assert verdict.decision == "inconclusive"
    assert "when the analysis was stopped" in verdict.reason


def test_once_shown_within_the_margin_a_metric_stays_passed_until_it_fails():
    [metric] = errors()["metrics"]
    shown = measure(metric, Series.from_counts(20000, 0), Series.from_counts(1000, 0))
    assert shown["phase"] == "successful"
    # two errors since: the bound alone would no longer clear 1 point, the earlier crossing does
    later = measure(metric, Series.from_counts(21000, 0), Series.from_counts(1050, 2), shown)
    assert later["phase"] == "successful" and "shown earlier" in later["why"]
    # but evidence of harm beyond the margin still fails it
    worse = measure(metric, Series.from_counts(22000, 0), Series.from_counts(1100, 40), later)
    assert worse["phase"] == "failed"
