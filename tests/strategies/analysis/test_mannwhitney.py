"""The Mann-Whitney test, the Hodges-Lehmann estimate and its interval, against scipy and by
hand. Values are multiples of 1/8 so differences are exact in floating point."""

from __future__ import annotations

import random

import numpy as np
import pytest
from scipy.stats import mannwhitneyu

from strategies.analysis.mannwhitney import bin_values, compress, mann_whitney


def ones(values):
    return [(v, 1.0) for v in values]


def samples(seed: int, shift: float):
    rng = random.Random(seed)
    n, m = rng.randint(1, 40), rng.randint(1, 40)
    x = [round((rng.gauss(shift, 1)) * 8) / 8 for _ in range(n)]
    y = [round(rng.gauss(0, 1) * 8) / 8 for _ in range(m)]
    return x, y


@pytest.mark.parametrize("seed", range(60))
def test_it_agrees_with_scipy_on_u_and_the_p_value(seed):
    x, y = samples(seed, shift=random.Random(seed).choice([0, 0.5, 2]))
    ours = mann_whitney(ones(x), ones(y))
    theirs = mannwhitneyu(x, y, alternative="two-sided", method="asymptotic", use_continuity=True)
    assert ours.u == pytest.approx(theirs.statistic, abs=1e-9)
    if not np.isnan(theirs.pvalue):
        assert ours.p_value == pytest.approx(theirs.pvalue, abs=1e-12)


@pytest.mark.parametrize("seed", range(60))
def test_the_estimate_is_the_median_of_the_pairwise_differences(seed):
    x, y = samples(seed, shift=1)
    assert mann_whitney(ones(x), ones(y)).estimate == pytest.approx(
        float(np.median(np.subtract.outer(x, y)))
    )


@pytest.mark.parametrize("seed", range(60))
def test_the_interval_holds_the_shifts_scipy_does_not_reject(seed):
    """Inverting the test: for every shift d between two pairwise differences, scipy's test of
    (x - d, y) keeps d (p >= 0.02) exactly when d lies inside our 98% interval (the interval
    stops at the range of the differences, as R's does)."""
    x, y = samples(seed, shift=1)
    result = mann_whitney(ones(x), ones(y), confidence=0.98)
    diffs = sorted(set(np.subtract.outer(x, y).ravel()))
    probes = [(a + b) / 2 for a, b in zip(diffs, diffs[1:], strict=False)]
    for d in probes + [diffs[0] - 1, diffs[-1] + 1]:
        p = mannwhitneyu(np.array(x) - d, y, alternative="two-sided", method="asymptotic").pvalue
        if result.lower < d < result.upper:
            assert p >= 0.02, (d, p, result)
        elif result.lower != diffs[0] and d < result.lower:
            assert p < 0.02, (d, p, result)
        elif result.upper != diffs[-1] and d > result.upper:
            assert p < 0.02, (d, p, result)
    assert result.lower <= result.estimate <= result.upper


def test_weights_count_as_repeated_observations():
    x = [1.0, 1.0, 1.0, 2.0, 5.0, 5.0]
    y = [0.0, 1.0, 1.0, 3.0]
    expanded = mann_whitney(ones(x), ones(y))
    weighted = mann_whitney([(1.0, 3), (2.0, 1), (5.0, 2)], [(0.0, 1), (1.0, 2), (3.0, 1)])
    assert weighted == expanded


def test_a_hand_worked_case():
    """x = 4, 5, 6 and y = 1, 2, 3: every x beats every y, so U = 9; the nine differences are
    1..5 (1 once, 2 twice, 3 three times, 4 twice, 5 once) with median 3."""
    result = mann_whitney(ones([4, 5, 6]), ones([1, 2, 3]), confidence=0.9)
    assert result.u == 9
    assert result.estimate == 3
    # sigma^2 = 3*3/12 * 7 = 5.25; z = (9 - 4.5 - 0.5) / sqrt(5.25) = 1.7457
    assert result.z == pytest.approx(4 / 5.25**0.5)
    assert result.p_value == pytest.approx(0.0808556, abs=1e-6)


def test_it_needs_observations_on_both_sides():
    with pytest.raises(ValueError):
        mann_whitney([], ones([1]))


def test_many_distinct_values_are_binned_not_refused():
    rng = random.Random(7)
    big = compress((rng.random(), 1.0) for _ in range(5000))
    binned = bin_values(big, 500)
    assert len(binned) <= 500
    assert sum(w for _, w in binned) == pytest.approx(5000)
    result = mann_whitney(big, [(v + 0.5, w) for v, w in big])
    assert result.estimate == pytest.approx(-0.5, abs=0.01)
