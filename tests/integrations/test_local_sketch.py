"""The router's latency sketch: 2%-wide buckets, so a 10% shift of p99 at 50 ms is visible."""

from __future__ import annotations

from integrations.local.stats import SKETCH_GAMMA, Series, sketch_index
from integrations.metrics.local import _counters, _delta, _series, _zero
from strategies.analysis.series import Series as Samples


def latencies(series: Series, ms: float, n: int) -> None:
    for i in range(n):
        series.observe("2xx", (ms + (i % 10) * 0.1) / 1000)


def as_samples(series: Series) -> Samples:
    raw = _counters(series.as_json())
    return Samples.from_dict(_series("latency", _delta(_zero(), raw, "blue"), 1.0))


def test_each_sketch_bucket_is_two_percent_wide():
    for ms in (0.7, 3.3, 50.0, 51.5, 987.0):
        i = sketch_index(ms)
        assert SKETCH_GAMMA ** (i - 1) < ms <= SKETCH_GAMMA**i * (1 + 1e-9)
    assert sketch_index(50.0) != sketch_index(51.5)


def test_a_ten_percent_shift_of_p99_at_50_ms_is_visible():
    before, after = Series(), Series()
    latencies(before, 5.0, 990)
    latencies(before, 51.0, 10)
    latencies(after, 5.0, 990)
    latencies(after, 56.1, 10)
    b, a = as_samples(before), as_samples(after)
    assert 50 <= b.quantile(0.995) <= 52.5
    assert 55 <= a.quantile(0.995) <= 57.5
    assert a.quantile(0.995) / b.quantile(0.995) > 1.07
    # the coarse Prometheus buckets (50-100 ms) cannot tell them apart
    assert before.buckets == after.buckets


def test_the_window_is_the_difference_of_two_sketch_readings():
    series = Series()
    latencies(series, 10.0, 100)
    first = _counters(series.as_json())
    latencies(series, 30.0, 50)
    window = _delta(first, _counters(series.as_json()), "blue")
    samples = Samples.from_dict(_series("latency", window, 1.0))
    assert samples.count == 50
    assert 30 <= samples.quantile(0.5) <= 31.5
