"""The always-valid error-rate test: hand-worked looks, its false-alarm bound under repeated
looks, and how fast it sees a clearly worse canary."""

from __future__ import annotations

import math
import random

import pytest
from scipy.stats import beta, nchypergeom_fisher

from strategies.analysis.sequential import (
    SequentialState,
    look_log_ratios,
    rate_interval,
)


def test_one_look_is_the_noncentral_hypergeometric_likelihood_ratio():
    """2 of 3 errors on the canary, which answered 10 of 100 requests: the ratio of Fisher's
    noncentral hypergeometric pmf at psi=3 to the central one (scipy's)."""
    ratios = look_log_ratios(10, 2, 90, 1, ratios=(3.0,))
    expected = nchypergeom_fisher.pmf(2, 100, 10, 3, 3.0) / nchypergeom_fisher.pmf(
        2, 100, 10, 3, 1.0
    )
    assert math.exp(ratios[0]) == pytest.approx(expected)


def test_looks_without_errors_or_traffic_carry_no_evidence():
    assert look_log_ratios(10, 0, 90, 0) == [0.0] * 8
    assert look_log_ratios(0, 0, 90, 5) == [0.0] * 8


def simulate(rng, p_canary, p_baseline, looks=60, n_canary=5, n_baseline=95, alpha=0.005):
    state = SequentialState()
    ct = ce = bt = be = 0
    for look in range(1, looks + 1):
        ct += n_canary
        bt += n_baseline
        ce += sum(rng.random() < p_canary for _ in range(n_canary))
        be += sum(rng.random() < p_baseline for _ in range(n_baseline))
        state = state.advance(ct, ce, bt, be)
        if state.rejects(alpha):
            return look
    return None


@pytest.mark.parametrize("rate", [0.0, 0.02, 0.2])
def test_a_canary_no_worse_is_rarely_rejected_however_often_it_looks(rate):
    rng = random.Random(11)
    rejected = sum(simulate(rng, rate, rate) is not None for _ in range(300))
    assert rejected <= 3  # alpha = 0.5%: 1.5 expected at most; Ville's bound is conservative


def test_twenty_more_points_of_errors_are_seen_within_a_few_looks():
    rng = random.Random(5)
    looks = [simulate(rng, 0.2, 0.0) for _ in range(100)]
    assert all(look is not None and look <= 8 for look in looks)


def test_a_zero_baseline_with_canary_errors_fails():
    state = SequentialState().advance(50, 5, 950, 0)
    assert state.rejects(0.005)


def test_it_continues_from_cumulative_counts_and_ignores_counts_that_go_down():
    once = SequentialState().advance(100, 10, 900, 5)
    stepwise = SequentialState().advance(40, 4, 300, 2).advance(100, 10, 900, 5)
    assert stepwise.looks == 2 and once.looks == 1
    again = stepwise.advance(90, 9, 800, 4)  # a reading from before: adds nothing
    assert again.log_e == stepwise.log_e
    assert SequentialState.from_dict(stepwise.to_dict()) == stepwise


def test_the_rate_interval_covers_the_rate_and_is_wider_than_a_fixed_one():
    low, high = rate_interval(5, 100, 0.05)
    assert low < 0.05 < high
    fixed = beta.ppf([0.025, 0.975], 5.5, 95.5)
    assert low < fixed[0] and high > fixed[1]
    assert rate_interval(0, 100)[0] == 0.0
    assert rate_interval(100, 100)[1] == 1.0
    assert rate_interval(0, 0) is None
