"""The analysis table's text: numbers a person reads, made from real measurements."""

from releases.live import readable
from strategies.analysis.classify import measure
from strategies.analysis.template import normalise

TEMPLATE = normalise(
    {
        "metrics": [
            {"name": "errors", "query": "error_rate", "count": 5, "min_samples": 10},
            {"name": "latency", "query": "latency", "test": "mann_whitney", "unit": "ms"},
        ]
    }
)
ERRORS, LATENCY = TEMPLATE["metrics"]


def test_a_sequential_measurement_reads_as_requests_errors_and_evidence():
    value = measure(
        ERRORS,
        {"total": 400, "errors": 2, "values": [], "weights": []},
        {"total": 100, "errors": 1, "values": [], "weights": []},
    )
    shown = readable.shown(ERRORS, value)
    assert shown["baseline"] == "400 requests · 2 errors (0.5%)"
    assert shown["canary"] == "100 requests · 1 errors (1%)"
    assert shown["evidence"].startswith("evidence ") and shown["evidence"].endswith("< 200")
    # the interval is the one the pass is judged at (the template's confidence, 95% by default)
    assert "error rate difference 95% CI" in shown["shift"]


def test_a_mann_whitney_measurement_reads_as_percentiles_and_a_shift_with_its_interval():
    base = [10.0 + i % 5 for i in range(60)]
    value = measure(LATENCY, {"values": base}, {"values": [v + 3 for v in base]})
    shown = readable.shown(LATENCY, value)
    assert shown["baseline"].startswith("60 samples · mean 12 ms · p50 ")
    assert " ms · p95 " in shown["canary"]
    assert shown["shift"].startswith("shift 3 ms (98% CI ")


def test_nothing_measured_yet_reads_as_dashes():
    assert readable.shown(LATENCY, {})["baseline"] == "—"
