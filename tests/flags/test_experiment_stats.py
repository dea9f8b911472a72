"""The experiment statistics (``flags.engine.experiment``, pure): the chi-square tail and the
sample-ratio check against ``scipy.stats``; the lift interval's coverage; the sequential verdict's
error rate under repeated looks (A/A) and its power (a real lift), by simulation with a seeded
generator; the "time still needed" estimate against the time the test really takes."""

from __future__ import annotations

import random

import pytest
from scipy import stats as scipy_stats

from flags.engine import experiment as ex


@pytest.mark.parametrize("df", [1, 2, 3, 5, 10, 40])
@pytest.mark.parametrize("x", [0.001, 0.5, 1.0, 3.84, 7.0, 15.0, 60.0, 200.0])
def test_chi_square_tail_matches_scipy(df, x):
    ours, theirs = ex.chi_square_sf(x, df), scipy_stats.chi2.sf(x, df)
    assert ours == pytest.approx(theirs, rel=1e-9, abs=1e-300)


def test_sample_ratio_matches_scipy_chisquare():
    exposures, weights = [5120, 4880, 1000], [450, 450, 100]
    total = sum(exposures)
    expected = [total * w / 1000 for w in weights]
    theirs = scipy_stats.chisquare(exposures, expected)
    ours = ex.sample_ratio(exposures, weights)
    assert ours.statistic == pytest.approx(theirs.statistic, rel=1e-12)
    assert ours.p_value == pytest.approx(theirs.pvalue, rel=1e-9)


def test_sample_ratio_flags_a_broken_split_and_passes_a_fair_one():
    assert ex.sample_ratio([5000, 5000], [500, 500]).mismatched is False
    assert ex.sample_ratio([5100, 4900], [500, 500]).mismatched is False  # p = 0.046
    broken = ex.sample_ratio([5300, 4700], [500, 500])  # p ~ 2e-9
    assert broken.mismatched and broken.p_value < 1e-6
    assert ex.sample_ratio([0, 0], [500, 500]) is None


def test_the_odds_ratio_sequence_covers_the_truth_at_every_look():
    """Treatment odds 1.25 x the control's, 40 looks each run: the true odds ratio stays inside
    the interval at EVERY look in nearly all runs (each side is tested at alpha / 2)."""
    rng = random.Random(3)
    p_control = 0.10
    odds = 1.25 * p_control / (1 - p_control)
    p_treatment = odds / (1 + odds)
    alpha = 0.05 / 2
    runs, missed = 40, 0
    for _ in range(runs):
        sequence = ex.OddsRatioSequence.from_dict(None)
        cc = cn = tc = tn = 0
        for _look in range(40):
            cn += 150
            tn += 150
            cc += sum(rng.random() < p_control for _ in range(150))
            tc += sum(rng.random() < p_treatment for _ in range(150))
            sequence = sequence.advance((cc, cn), (tc, tn), alpha)
            low, high = sequence.interval()
            if (low is not None and low >= 1.25) or (high is not None and high <= 1.25):
                missed += 1
                break
    assert missed <= 2
    # and it narrows around the truth: after 6,000 per arm, 1 is ruled out in most runs
    assert sequence.interval()[0] is not None
    low, high = sequence.interval()
    assert low < 1.25 < high


def test_the_interval_leaves_one_out_exactly_when_the_verdict_is_in():
    rng = random.Random(8)
    alpha = ex.per_direction_alpha(0.05, 1)
    comparison, sequence = ex.Comparison.from_dict(None), ex.OddsRatioSequence.from_dict(None)
    cc = cn = tc = tn = 0
    for _ in range(60):
        cn += 200
        tn += 200
        cc += sum(rng.random() < 0.10 for _ in range(200))
        tc += sum(rng.random() < 0.125 for _ in range(200))
        comparison = comparison.advance((cc, cn), (tc, tn))
        sequence = sequence.advance((cc, cn), (tc, tn), alpha)
        low, _ = sequence.interval()
        decided = comparison.up.rejects(alpha)
        assert decided == (low is not None and low >= 1)
        if decided:
            break
    assert decided


def test_lift_at_an_odds_ratio():
    assert ex.lift_at(1.0, 0.1) == pytest.approx(0.0)
    # odds 0.1/0.9 x 2 -> rate 0.1818...: a lift of 81.8 %
    assert ex.lift_at(2.0, 0.1) == pytest.approx((2 / 11) / 0.1 - 1)
    assert ex.lift((10, 100), (12, 100)) == pytest.approx(0.2)
    assert ex.lift((0, 100), (12, 100)) is None


def _run(rng, p_control, p_treatment, looks, per_look, alpha):
    comparison = ex.Comparison.from_dict(None)
    cc = cn = tc = tn = 0
    for look in range(1, looks + 1):
        cn += per_look
        tn += per_look
        cc += sum(rng.random() < p_control for _ in range(per_look))
        tc += sum(rng.random() < p_treatment for _ in range(per_look))
        comparison = comparison.advance((cc, cn), (tc, tn))
        verdict = comparison.verdict(alpha)
        if verdict != "inconclusive":
            return verdict, look
    return "inconclusive", looks


def test_no_difference_rarely_gives_a_verdict_however_often_it_is_looked_at():
    """A/A, looked at 100 times each: a fixed-horizon test peeked at like this would be wrong
    far more often than alpha; the sequential one stays below it (per direction)."""
    rng = random.Random(14)
    alpha = ex.per_direction_alpha(0.05, 1)  # 0.0125 per direction
    runs = 200
    wrong = sum(_run(rng, 0.1, 0.1, 100, 100, alpha)[0] != "inconclusive" for _ in range(runs))
    assert wrong <= runs * 2 * alpha + 3  # 5 of 200 allowed, +3 for the simulation's noise


def test_a_real_lift_is_found_and_its_direction_is_right():
    rng = random.Random(15)
    alpha = ex.per_direction_alpha(0.05, 1)
    better = [_run(rng, 0.10, 0.13, 200, 200, alpha) for _ in range(20)]
    assert sum(v == "better" for v, _ in better) >= 18
    worse = [_run(rng, 0.13, 0.10, 200, 200, alpha) for _ in range(20)]
    assert sum(v == "worse" for v, _ in worse) >= 18


def test_time_needed_estimates_the_time_the_test_takes():
    """Projected at 1,200 exposures an hour per arm, 10 % vs 12 %: the estimate is within a
    factor of two of the median time simulated runs really take."""
    alpha = ex.per_direction_alpha(0.05, 1)
    estimate = ex.hours_needed(ex.Comparison.from_dict(None).up, (1200, 0.12), (1200, 0.10), alpha)
    assert estimate is not None and estimate > 1
    rng = random.Random(16)
    taken = sorted(_run(rng, 0.10, 0.12, 400, 1200, alpha)[1] for _ in range(15))
    median = taken[len(taken) // 2]
    assert median / 2 <= estimate <= median * 2
    # no traffic, or no difference: no estimate
    assert ex.hours_needed(ex.Comparison.from_dict(None).up, (0, 0.1), (100, 0.1), alpha) is None
    assert (
        ex.hours_needed(ex.Comparison.from_dict(None).up, (1000, 0.1), (1000, 0.1), alpha) is None
    )


def test_comparison_state_round_trips():
    c = ex.Comparison.from_dict(None).advance((10, 100), (20, 100))
    again = ex.Comparison.from_dict(c.to_dict())
    assert again == c and again.up.ratios == ex.RATIOS
