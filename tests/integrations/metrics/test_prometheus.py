"""The Prometheus provider against a real Prometheus (the Debian package, started here on a
loopback port) scraping a real fleet agent's /metrics."""

from __future__ import annotations

import time

import httpx
import pytest

from integrations.base import Arm, IntegrationError, MetricQuery
from integrations.metrics.prometheus import PrometheusMetrics, escape, render
from strategies.analysis.series import Series
from tests.integrations.metrics.conftest import KEY, send

SELECTOR = 'target="{{target}}", slot="{{slot}}", version="{{version}}"'
ERRORS = (
    f'sum(increase(switchyard_router_requests_total{{{SELECTOR}, code_class=~"5xx|error"}}'
    "[{{window}}]))"
)
TOTAL = f"sum(increase(switchyard_router_requests_total{{{SELECTOR}}}[{{{{window}}}}]))"
P99 = (
    "histogram_quantile(0.99, sum by (le) (rate("
    f"switchyard_router_request_duration_seconds_bucket{{{SELECTOR}}}[10s])))"
)


def query(promql: str, mode: str, **extra) -> MetricQuery:
    return MetricQuery(
        promql,
        baseline=Arm("blue", "1.0"),
        canary=Arm("green", "2.0"),
        mode=mode,
        target=KEY,
        values={"target": KEY},
        step=1.0,
        **extra,
    )


def scraped(url: str) -> bool:
    answer = httpx.get(
        f"{url}/api/v1/query",
        params={
            "query": TOTAL.replace("{{window}}", "1m")
            .replace("{{target}}", KEY)
            .replace("{{slot}}", "green")
            .replace("{{version}}", "2.0")
        },
    ).json()
    result = answer["data"]["result"]
    return bool(result) and float(result[0]["value"][1]) > 0


@pytest.fixture(scope="module")
def window(fleet, prometheus):
    _, _, endpoint = fleet
    start = time.time()
    deadline = start + 30
    while time.time() < deadline:
        send(endpoint, 100)
        if time.time() - start > 8 and scraped(prometheus):
            break
        time.sleep(0.5)
    time.sleep(2)  # one more scrape after the last requests
    return start, time.time()


def test_counts_come_from_two_rendered_queries(prometheus, window):
    start, end = window
    source = PrometheusMetrics(address=prometheus)
    sample = source.fetch(
        query(ERRORS, "counts", total_query=TOTAL), source.begin(None), start, end
    )
    baseline, canary = Series.from_dict(sample["baseline"]), Series.from_dict(sample["canary"])
    assert baseline.total > 50 and canary.total > 50
    assert baseline.errors == 0
    assert 0.25 < canary.errors / canary.total < 0.75


def test_a_range_query_gives_one_value_per_step(prometheus, window):
    start, end = window
    sample = PrometheusMetrics(address=prometheus).fetch(query(P99, "range"), {}, start, end)
    canary = Series.from_dict(sample["canary"]).without_nan()
    baseline = Series.from_dict(sample["baseline"]).without_nan()
    assert canary.count >= 2
    assert min(v for v, _ in canary.pairs()) > max(v for v, _ in baseline.pairs())


def test_an_instant_query_reads_the_value_at_the_end(prometheus, window):
    _, end = window
    sample = PrometheusMetrics(address=prometheus).fetch(query(TOTAL, "instant"), {}, end - 30, end)
    assert Series.from_dict(sample["canary"]).values[0] > 0


def test_no_series_is_no_data_not_an_error(prometheus, window):
    start, end = window
    missing = 'sum(rate(no_such_metric{slot="{{slot}}"}[1m]))'
    sample = PrometheusMetrics(address=prometheus).fetch(query(missing, "instant"), {}, start, end)
    assert sample["canary"] == {"values": []}


def test_a_bad_query_is_permanent_and_a_dead_server_is_not(prometheus):
    with pytest.raises(IntegrationError) as bad:
        PrometheusMetrics(address=prometheus).instant("sum(", time.time())
    assert bad.value.permanent and "refused the query" in bad.value.message
    with pytest.raises(IntegrationError) as down:
        PrometheusMetrics(address="http://127.0.0.1:9").instant("up", time.time())
    assert not down.value.permanent


def test_arguments_cannot_break_out_of_a_label_matcher():
    rendered = render('up{job="{{args.job}}"}', {"args.job": 'x"} or vector(1) or up{a="'})
    assert rendered == 'up{job="x\\"} or vector(1) or up{a=\\""}'
    assert escape("a\\b\nc") == "a\\\\b\\nc"


BUCKETS = (
    "sum by (le) (increase("
    f"switchyard_router_request_duration_seconds_bucket{{{SELECTOR}}}[{{{{window}}}}]))"
)


def test_a_histogram_query_gives_the_buckets_at_their_native_resolution(prometheus, window):
    start, end = window
    sample = PrometheusMetrics(address=prometheus).fetch(
        query(BUCKETS, "histogram"), {}, start, end
    )
    canary, baseline = Series.from_dict(sample["canary"]), Series.from_dict(sample["baseline"])
    bounds = [b for b, _ in canary.buckets]
    assert bounds == sorted(bounds) and bounds[-1] == float("inf")
    assert len(bounds) == 12  # the router's classic buckets, every one of them, none invented
    assert canary.total > 50 and baseline.total > 50
    assert 0.025 <= canary.quantile(0.5) <= 0.05  # the canary sleeps 30 ms: the 25-50 ms bucket


def test_the_quantile_test_says_when_prometheus_buckets_are_too_coarse(prometheus, window):
    from strategies.analysis.classify import measure
    from strategies.analysis.template import normalise

    metric = normalise(
        {
            "metrics": [
                {"name": "lat", "provider": "prometheus", "query": BUCKETS, "test": "quantile"}
            ]
        }
    )["metrics"][0]
    start, end = window
    sample = PrometheusMetrics(address=prometheus).fetch(
        query(BUCKETS, "histogram"), {}, start, end
    )
    first = measure(metric, sample["baseline"], sample["canary"])  # fixes the thresholds
    assert first["resolution"]["coarse"]
    assert "buckets are coarse" in first["why"]
