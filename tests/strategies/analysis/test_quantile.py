"""The sequential latency test: fails a slower canary fast, never a same one, passes only within
the margin, and says when the buckets are too coarse to tell."""

from __future__ import annotations

import math
import random

from strategies.analysis.classify import measure
from strategies.analysis.quantile import QuantileState, count_above
from strategies.analysis.series import Series
from strategies.analysis.template import normalise

GAMMA = 1.02


def latency(**fields):
    raw = {"name": "latency", "query": "latency", "interval": 1, "count": 5, **fields}
    return normalise({"metrics": [raw]})["metrics"][0]


def sketch(values: list[float]) -> dict:
    """Values (ms) as the router's 2% sketch buckets, every bucket between the extremes."""
    counts: dict[int, int] = {}
    for v in values:
        i = math.ceil(math.log(v) / math.log(GAMMA) - 1e-9)
        counts[i] = counts.get(i, 0) + 1
    low, high = min(counts), max(counts)
    buckets = [[GAMMA ** (low - 1), 0]]
    buckets += [[GAMMA**i, counts.get(i, 0)] for i in range(low, high + 1)]
    return {"buckets": [*buckets, ["+Inf", 0]], "sum": sum(values)}


def service(rng: random.Random, scale: float = 1.0, slow_share: float = 0.0) -> float:
    ms = 0.6 + rng.expovariate(1 / 0.8) + 20 + rng.uniform(-5, 5)
    if rng.random() < slow_share:
        ms += 30
    return ms * scale


def run(metric, seed: int, looks: int, *, scale=1.0, slow_share=0.0, rate=(95, 5)):
    """Cumulative windows, one look a second, until a verdict: (phase, look, result)."""
    rng = random.Random(seed)
    base, canary, previous = [], [], None
    for look in range(1, looks + 1):
        base += [service(rng) for _ in range(rate[0])]
        canary += [service(rng, scale, slow_share) for _ in range(rate[1])]
        previous = measure(metric, sketch(base), sketch(canary), previous)
        if previous["phase"] in ("failed", "successful"):
            return previous["phase"], look, previous
    return previous["phase"], looks, previous


def test_a_canary_fifty_percent_slower_is_rolled_back_within_seconds():
    metric = latency()
    for seed in range(10):
        phase, look, result = run(metric, seed, 60, scale=1.5)
        assert phase == "failed" and look <= 15, (seed, look)
        assert "clearly slower" in result["why"]
        assert result["effect"]["e_value"] >= 200


def test_slower_tails_on_ten_percent_of_requests_are_caught_too():
    metric = latency()
    phases = [run(metric, seed, 120, slow_share=0.1)[0] for seed in range(5)]
    assert phases == ["failed"] * 5


def test_a_canary_like_the_baseline_is_never_rolled_back_and_passes_within_the_margin():
    metric = latency()
    outcomes = [run(metric, 100 + seed, 300) for seed in range(12)]
    assert all(phase != "failed" for phase, _, _ in outcomes)
    passed = [r for phase, _, r in outcomes if phase == "successful"]
    assert len(passed) >= 9  # most show it within 5 minutes at 5 req/s
    assert all("Within the margin" in r["why"] for r in passed)


def test_a_canary_beyond_the_margin_never_passes():
    metric = latency(margin=0.1)
    for seed in range(6):
        phase, _, result = run(metric, 200 + seed, 200, scale=1.15)
        assert phase != "successful", result["why"]


def test_a_small_real_slowdown_is_not_rolled_back():
    """5% slower: the evidence may show it is slower, but not beyond the 20% margin."""
    metric = latency()
    for seed in range(6):
        phase, _, result = run(metric, 300 + seed, 120, scale=1.05)
        assert phase != "failed", result["why"]


def test_the_thresholds_wait_for_enough_baseline_and_the_first_look_adds_no_evidence():
    metric = latency()
    few = measure(metric, sketch([20.0] * 60), sketch([21.0] * 5))
    assert few["insufficient"] and few["state"]["thresholds"] == []
    rng = random.Random(1)
    first = measure(metric, sketch([service(rng) for _ in range(300)]), sketch([40.0] * 20))
    state = QuantileState.from_dict(first["state"])
    assert len(state.thresholds) == 3 and state.log_e == ()
    assert state.limit == state.reference * 1.2
    assert QuantileState.from_dict(state.to_dict()) == state


def test_coarse_buckets_are_said_and_never_pass():
    coarse = [5, 10, 25, 50, 100, 250, 500, 1000, "+Inf"]

    def histogram(values):
        counts = [0] * len(coarse)
        for v in values:
            counts[next(i for i, b in enumerate(coarse) if b == "+Inf" or v <= b)] += 1
        return {"buckets": [[b, c] for b, c in zip(coarse, counts, strict=True)]}

    metric = latency()
    rng = random.Random(3)
    base, canary, result = [], [], None
    for _ in range(200):
        base += [service(rng) for _ in range(95)]
        canary += [service(rng) for _ in range(5)]
        result = measure(metric, histogram(base), histogram(canary), result)
        assert result["phase"] != "successful"
    assert result["resolution"]["coarse"]
    assert "buckets are coarse" in result["why"] and "cannot show" in result["why"]


def test_a_bucket_straddling_a_threshold_counts_against_the_canary_only_when_loose():
    series = Series.from_dict({"buckets": [[10, 5], [20, 7], ["+Inf", 1]]})
    assert count_above(series, 15) == 1  # strict: only buckets starting at or above 15
    assert count_above(series, 15, loose=True) == 8
    assert count_above(series, 10) == 8
