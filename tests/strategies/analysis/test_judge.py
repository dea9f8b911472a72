"""Classifying one measurement (Kayenta's rules, thresholds, the sequential test), the score,
the condition language and templates."""

from __future__ import annotations

import math

import pytest

from strategies.analysis import expr
from strategies.analysis.classify import measure
from strategies.analysis.score import score
from strategies.analysis.series import Series
from strategies.analysis.template import TemplateError, bind, normalise, resolve_args


def metric(**fields):
    base = {"name": "m", "query": "latency", "test": "mann_whitney", "min_samples": 3}
    return normalise({"metrics": [{**base, **fields}]})["metrics"][0]


def values(*numbers):
    return Series(values=tuple(float(n) for n in numbers))


# --- Mann-Whitney, in Kayenta's manner -----------------------------------------------------------


def test_it_classifies_a_clearly_higher_canary_as_high():
    result = measure(metric(), values(*range(10, 30)), values(*range(40, 60)))
    assert result["phase"] == "failed" and result["classification"] == "high"
    assert result["interval"]["lower"] > result["interval"]["tolerance"]
    assert result["effect"]["ratio"] > 1.1
    assert "higher" in result["why"]
    assert set(result["canary"]) >= {"count", "mean", "p50", "p95", "p99"}


def test_a_significant_shift_within_the_allowed_increase_passes():
    baseline = values(*[100 + i * 0.01 for i in range(50)])
    canary = values(*[105 + i * 0.01 for i in range(50)])  # 5% higher, every time
    result = measure(metric(allowed_increase=1.1), baseline, canary)
    assert result["classification"] == "pass"
    assert "within the allowed" in result["why"]
    assert measure(metric(allowed_increase=1.01), baseline, canary)["classification"] == "high"


def test_direction_decides_which_way_fails():
    low = values(*range(10, 30))
    high = values(*range(40, 60))
    assert measure(metric(direction="increase"), high, low)["classification"] == "pass"
    assert measure(metric(direction="decrease"), high, low)["classification"] == "low"
    assert measure(metric(direction="either"), high, low)["classification"] == "low"


def test_identical_data_passes():
    data = values(1, 2, 3, 4)
    result = measure(metric(), data, data)
    assert result["classification"] == "pass" and "identical" in result["why"]


def test_a_zero_baseline_with_a_nonzero_canary_fails():
    """Kayenta #799: a baseline of zeros made the ratio meaningless and the metric passed."""
    result = measure(metric(), values(0, 0, 0, 0, 0), values(0, 0, 0, 1, 0))
    assert result["classification"] == "high"
    assert "zero baseline" in result["why"]


def test_too_few_samples_is_inconclusive_and_says_how_many():
    result = measure(metric(min_samples=10), values(*range(20)), values(1, 2))
    assert result["phase"] == "inconclusive" and result["insufficient"]
    assert "canary 2 of the 10" in result["why"]


def test_nan_values_are_removed_or_replaced():
    nan = math.nan
    baseline = values(1, 1, 1, 1, 1)
    canary = values(nan, nan, nan, 1, 1)
    removed = measure(metric(min_samples=2), baseline, canary)
    assert removed["canary"]["count"] == 2
    replaced = measure(
        metric(min_samples=2, nan_strategy="replace", direction="decrease"), baseline, canary
    )
    assert replaced["canary"]["count"] == 5 and replaced["canary"]["mean"] == pytest.approx(0.4)


def test_outliers_can_be_removed():
    baseline = values(*([10] * 20 + [11] * 20))
    canary = values(*([10] * 20 + [11] * 19 + [10_000]))
    kept = measure(metric(), baseline, canary)
    assert kept["canary"]["count"] == 40
    cleaned = measure(metric(outliers="remove"), baseline, canary)
    assert cleaned["canary"]["count"] == 39


# --- thresholds (Argo) ----------------------------------------------------------------------------


def threshold(**fields):
    return metric(test="threshold", statistic="mean", **fields)


def test_argo_semantics_of_the_two_conditions():
    both = threshold(success_condition="canary < 10", failure_condition="canary > 20")
    assert measure(both, values(1, 1, 1), values(5, 5, 5))["phase"] == "successful"
    assert measure(both, values(1, 1, 1), values(25, 25, 25))["phase"] == "failed"
    neither = measure(both, values(1, 1, 1), values(15, 15, 15))
    assert neither["phase"] == "inconclusive" and not neither["insufficient"]
    only_success = threshold(success_condition="canary < 10")
    assert measure(only_success, values(1, 1, 1), values(15, 15, 15))["phase"] == "failed"
    only_failure = threshold(failure_condition="canary > 20")
    assert measure(only_failure, values(1, 1, 1), values(15, 15, 15))["phase"] == "successful"


def test_a_ratio_condition_fails_on_a_zero_baseline():
    ratio = threshold(success_condition="canary / baseline < 1.5")
    result = measure(ratio, values(0, 0, 0), values(1, 1, 1))
    assert result["phase"] == "failed"
    assert result["effect"]["ratio_infinite"]


def test_an_error_rate_threshold_reads_request_counts():
    m = normalise(
        {"metrics": [{"name": "e", "query": "error_rate", "failure_condition": "canary > 0.05"}]}
    )["metrics"][0]
    assert m["statistic"] == "rate" and m["test"] == "threshold"
    result = measure(m, Series.from_counts(1000, 10), Series.from_counts(100, 10))
    assert result["phase"] == "failed" and result["value"]["canary"] == pytest.approx(0.1)


# --- the sequential test ------------------------------------------------------------------------


def sequential():
    return normalise({"metrics": [{"name": "errors", "query": "error_rate"}]})["metrics"][0]


def test_the_sequential_test_fails_a_clearly_worse_canary():
    result = measure(sequential(), Series.from_counts(950, 0), Series.from_counts(50, 8))
    assert result["phase"] == "failed" and result["test"] == "sequential"
    assert result["effect"]["e_value"] >= 200
    assert result["interval"]["always_valid"]
    assert "clearly worse" in result["why"]


def test_the_sequential_test_waits_for_enough_requests():
    result = measure(sequential(), Series.from_counts(400, 0), Series.from_counts(20, 0))
    assert result["phase"] == "inconclusive" and result["insufficient"]
    assert "canary 20 of the 50 requests" in result["why"]
    ok = measure(sequential(), Series.from_counts(950, 1), Series.from_counts(60, 0), result)
    assert ok["phase"] == "inconclusive" and ok["undecided"] and not ok["insufficient"]
    assert ok["state"]["looks"] == 2


# --- the score ------------------------------------------------------------------------------------


def scored(*phases, critical=(), groups=None):
    metrics = [
        {"name": f"m{i}", "group": f"g{i}", "dry_run": False, "critical": i in critical}
        for i in range(len(phases))
    ]
    latest = {f"m{i}": {"phase": p} for i, p in enumerate(phases)}
    judge = {"pass_score": 95, "marginal_score": 75, "groups": groups or {}}
    return score(latest, metrics, judge)


def test_the_score_is_the_weighted_share_of_passing_groups():
    assert scored("successful", "successful")["score"] == 100
    half = scored("successful", "failed")
    assert half["score"] == 50 and half["classification"] == "fail"
    weighted = scored("successful", "failed", groups={"g0": 80, "g1": 20})
    assert weighted["score"] == 80 and weighted["classification"] == "marginal"


def test_a_failed_critical_metric_makes_the_score_zero():
    result = scored("successful", "successful", "failed", critical=(2,), groups=None)
    assert result["score"] == 0 and result["critical_failures"] == ["m2"]


# --- conditions --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ['__import__("os")', "canary.real", "x < 1", "[1][0]", "lambda: 1", "canary ** 2", "abs < 1"],
)
def test_the_condition_language_refuses_anything_but_arithmetic_and_comparisons(text):
    with pytest.raises(expr.InvalidExpression):
        expr.parse(text)


def test_conditions_accept_argo_spelling_and_divide_safely():
    names = expr.variables(0.2, 0.0)
    assert expr.evaluate("result > 0.1 && !(baseline > 0)", names)
    assert expr.evaluate("ratio > 1000 || difference < 0", names)
    assert not expr.evaluate("canary / baseline < 1.5", names)
    assert not expr.evaluate("isNaN(canary) && canary == canary", names)


# --- templates --------------------------------------------------------------------------------


def test_a_template_lists_every_problem_by_path():
    with pytest.raises(TemplateError) as caught:
        normalise(
            {
                "metrics": [
                    {"name": "a", "query": "nope"},
                    {"name": "b", "query": "latency", "success_condition": "canary <"},
                    {"query": "latency", "interval": "soon", "bogus": 1},
                ]
            }
        )
    paths = {e.path for e in caught.value.errors}
    assert {"metrics[0].query", "metrics[1].success_condition", "metrics[2].name"} <= paths
    assert {"metrics[2].interval", "metrics[2].bogus"} <= paths


def test_argo_metric_spelling_is_translated():
    template = normalise(
        {
            "args": [{"name": "limit", "value": "0.05"}],
            "metrics": [
                {
                    "name": "errors",
                    "provider": {"prometheus": {"address": "http://127.0.0.1:9", "query": "up"}},
                    "successCondition": "result < {{args.limit}}",
                    "failureLimit": 2,
                    "initialDelay": "10s",
                    "dryRun": True,
                }
            ],
        }
    )
    m = template["metrics"][0]
    assert (m["provider"], m["address"], m["query"]) == ("prometheus", "http://127.0.0.1:9", "up")
    assert (m["failure_limit"], m["initial_delay"], m["dry_run"]) == (2, 10.0, True)
    bound = bind(template, resolve_args(template, {"limit": "0.01"}))
    assert bound["metrics"][0]["success_condition"] == "result < 0.01"


def test_arguments_must_be_declared_and_given():
    template = normalise(
        {"args": [{"name": "need"}], "metrics": [{"name": "m", "query": "latency"}]}
    )
    with pytest.raises(TemplateError, match="args.need"):
        resolve_args(template, {})
    with pytest.raises(TemplateError, match="args.other"):
        resolve_args(template, {"need": "1", "other": "2"})
    with pytest.raises(TemplateError, match="unknown placeholder"):
        normalise(
            {
                "metrics": [
                    {"name": "m", "provider": "prometheus", "query": 'up{job="{{args.nope}}"}'}
                ]
            }
        )


def test_normalising_twice_changes_nothing():
    once = normalise(
        {
            "args": [{"name": "limit"}],
            "metrics": [
                {"name": "e", "query": "error_rate"},
                {"name": "l", "query": "latency", "count": 3},
                {
                    "name": "p",
                    "provider": "prometheus",
                    "query": "up",
                    "statistic": "last",
                    "success_condition": "canary < {{args.limit}}",
                },
            ],
        }
    )
    assert normalise(once) == once
