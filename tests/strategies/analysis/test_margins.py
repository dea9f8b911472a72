"""Pass means "not worse by more than the margin": shown, not assumed; undecided metrics look on
until their maximum duration and then pause the run, never pass it."""

from __future__ import annotations

import random

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
    assert (e["margin"], e["margin_ratio"], e["confidence"]) == (0.01, 2.0, 0.95)
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
    assert "not yet below the margin of 1 point or 2x the baseline's rate" in early["why"]
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


def noisy_looks(seed: int, canary_rate: float, seconds: int = 300):
    """Cumulative (baseline, canary) counts per second of a service failing 3% of its requests on
    both sides with a jitter that moves both (x0.5 .. x1.5 each second), 5% of 100 req/s on the
    canary -- the bench's noisy scenario, drawn with a seeded generator."""
    rng = random.Random(seed)
    b_total = b_errors = c_total = c_errors = 0
    for _ in range(seconds):
        jitter = rng.uniform(0.5, 1.5)
        for _ in range(100):
            canary = rng.random() < 0.05
            failed = rng.random() < (canary_rate if canary else 0.03) * jitter
            if canary:
                c_total, c_errors = c_total + 1, c_errors + failed
            else:
                b_total, b_errors = b_total + 1, b_errors + failed
        yield Series.from_counts(b_total, b_errors), Series.from_counts(c_total, c_errors)


def judge_looks(metric, looks):
    """The last result and how many looks it took (one a second)."""
    result, taken = None, 0
    for baseline, canary in looks:
        result, taken = measure(metric, baseline, canary, result), taken + 1
        if result["phase"] != "inconclusive":
            break
    return result, taken


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_noisy_healthy_service_passes_at_the_default_margin_within_its_max_duration(seed):
    [metric] = errors()["metrics"]
    result, seconds = judge_looks(metric, noisy_looks(seed, 0.03))
    assert result["phase"] == "successful", result["why"]
    assert seconds < 300 and "odds ratio < 2" in result["why"]


def test_a_noisy_service_at_1_point_only_cannot_be_shown_within_it_in_5_minutes():
    [metric] = errors(margin_ratio=1.0)["metrics"]
    result, seconds = judge_looks(metric, noisy_looks(1, 0.03))
    assert result["phase"] == "inconclusive" and result["undecided"] and seconds == 300


def test_the_default_ratio_does_not_hide_5_points_more_errors_on_a_noisy_service():
    [metric] = errors()["metrics"]
    result, _ = judge_looks(metric, noisy_looks(4, 0.08))
    assert result["phase"] == "failed", result["why"]
    assert "beyond the margin of 1 point or 2x the baseline's rate" in result["why"]


def test_below_1_percent_the_ratio_adds_nothing_a_clean_service_is_judged_by_the_point():
    [metric] = errors()["metrics"]
    # baseline 0.2%, canary 0.8%: 4x the baseline's rate but within 1 point -> passes by it
    looks = [
        (Series.from_counts(950 * k, 2 * k), Series.from_counts(500 * k, 4 * k))
        for k in range(1, 40)
    ]
    result, _ = judge_looks(metric, looks)
    assert result["phase"] == "successful" and "difference <=" in result["why"]


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


def test_without_errors_on_either_side_the_ratio_changes_no_verdict():
    [ratio] = errors()["metrics"]
    [points] = errors(margin_ratio=1.0)["metrics"]
    a = b = None
    for k in range(1, 200):
        looks = (Series.from_counts(95 * k, 0), Series.from_counts(5 * k, 0))
        a, b = measure(ratio, *looks, a), measure(points, *looks, b)
        assert (a["phase"], a["classification"]) == (b["phase"], b["classification"])
    assert a["phase"] == "successful"
