"""Prometheus histogram answers as one histogram: classic ``le`` buckets and native ones.

Native (sparse, exponential) histograms need Prometheus scraping protobuf with the
``native-histograms`` feature flag, which the Debian package here cannot be fed by our router
(it writes the text format): their answer is parsed here from the JSON shape Prometheus'
HTTP API documents (``"histogram": [t, {"count", "sum", "buckets": [[rule, lower, upper,
count], ...]}]``)."""

from __future__ import annotations

from integrations.metrics.prometheus import histogram
from strategies.analysis.series import Series


def test_classic_buckets_are_made_per_bucket_and_series_added_up():
    data = {
        "resultType": "vector",
        "result": [
            {"metric": {"le": "0.05"}, "value": [0, "10"]},
            {"metric": {"le": "0.1"}, "value": [0, "30"]},
            {"metric": {"le": "+Inf"}, "value": [0, "31"]},
            {"metric": {"le": "0.05"}, "value": [0, "0"]},  # another series: added up
            {"metric": {"le": "0.1"}, "value": [0, "5"]},
            {"metric": {"le": "+Inf"}, "value": [0, "5"]},
        ],
    }
    out = histogram(data)
    assert out["buckets"] == [[0.05, 10], [0.1, 25], ["+Inf", 1]]
    assert out["total"] == 36


def test_native_buckets_keep_their_lower_edges():
    data = {
        "resultType": "vector",
        "result": [
            {
                "metric": {},
                "histogram": [
                    0,
                    {
                        "count": "30",
                        "sum": "1.5",
                        "buckets": [
                            [0, "0.0476", "0.05", "10"],
                            [0, "0.05", "0.0525", "15"],
                            [0, "0.0625", "0.0656", "5"],
                        ],
                    },
                ],
            }
        ],
    }
    series = Series.from_dict(histogram(data))
    assert series.total == 30
    assert [round(b, 4) for b, _ in series.buckets[:5]] == [0.0476, 0.05, 0.0525, 0.0625, 0.0656]
    assert [c for _, c in series.buckets[:5]] == [0, 10, 15, 0, 5]  # gaps stay empty
    assert 0.05 < series.quantile(0.5) < 0.0525
