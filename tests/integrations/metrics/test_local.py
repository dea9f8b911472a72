"""The local provider against a real fleet agent: windows from two readings, per version."""

from __future__ import annotations

import pytest

from integrations.base import Arm, IntegrationError, MetricQuery
from integrations.metrics import build_metrics
from integrations.metrics.local import LocalMetrics
from strategies.analysis.series import Series
from tests.integrations.metrics.conftest import KEY, send


def query(name: str, *, baseline_version="1.0") -> MetricQuery:
    return MetricQuery(name, baseline=Arm("blue", baseline_version), canary=Arm("green", "2.0"))


def test_it_counts_requests_and_errors_per_arm_over_the_window(fleet):
    agent, _, endpoint = fleet
    source = build_metrics("local", fleet_url=agent.url, token=agent.token, target=KEY)
    send(endpoint, 50)  # before the window: not counted
    cursor = source.begin(query("error_rate"))
    send(endpoint, 400)
    sample = source.fetch(query("error_rate"), cursor, 0, 10)
    baseline, canary = Series.from_dict(sample["baseline"]), Series.from_dict(sample["canary"])
    assert baseline.total + canary.total == 400
    assert 100 < canary.total < 300
    assert baseline.errors == 0
    assert 0.3 < canary.errors / canary.total < 0.7


def test_latency_comes_as_a_histogram_in_milliseconds(fleet):
    agent, _, endpoint = fleet
    source = LocalMetrics(fleet_url=agent.url, token=agent.token, target=KEY)
    cursor = source.begin(query("latency"))
    send(endpoint, 200)
    sample = source.fetch(query("latency"), cursor, 0, 10)
    baseline, canary = Series.from_dict(sample["baseline"]), Series.from_dict(sample["canary"])
    assert baseline.count + canary.count == 200
    assert canary.mean() > 25 > baseline.mean()  # the canary sleeps 30 ms per request
    assert 25 <= canary.quantile(0.5) <= 50


def test_another_version_in_the_slot_is_not_mixed_in(fleet):
    agent, _, endpoint = fleet
    source = LocalMetrics(fleet_url=agent.url, token=agent.token, target=KEY)
    q = query("error_rate", baseline_version="0.9")
    cursor = source.begin(q)
    send(endpoint, 100)
    assert Series.from_dict(source.fetch(q, cursor, 0, 1)["baseline"]).total == 0


def test_a_refused_token_is_permanent_and_a_dead_agent_is_not(fleet):
    agent, _, _ = fleet
    with pytest.raises(IntegrationError) as refused:
        LocalMetrics(fleet_url=agent.url, token="wrong", target=KEY).begin(query("error_rate"))
    assert refused.value.permanent
    dead = LocalMetrics(fleet_url="http://127.0.0.1:9", token="x", target=KEY)
    with pytest.raises(IntegrationError) as down:
        dead.begin(query("error_rate"))
    assert not down.value.permanent


def test_an_unknown_query_is_permanent(fleet):
    agent, _, _ = fleet
    with pytest.raises(IntegrationError) as caught:
        LocalMetrics(fleet_url=agent.url, token=agent.token, target=KEY).begin(query("cpu"))
    assert caught.value.permanent


def test_reading_the_counters_at_every_look_builds_no_ssl_context_per_call(fleet, monkeypatch):
    """Each look reads the agent without a shared client: httpx would build (and load the CA
    bundle into) a fresh SSL context per call -- most of a look on a loaded machine."""
    import httpx

    from integrations import http

    built = []
    real = httpx.create_ssl_context
    monkeypatch.setattr(httpx, "create_ssl_context", lambda *a, **k: built.append(1) or real())
    http.ssl_context.cache_clear()
    agent, _, endpoint = fleet
    source = LocalMetrics(fleet_url=agent.url, token=agent.token, target=KEY)
    cursor = source.begin(query("error_rate"))
    for _ in range(5):
        send(endpoint, 5)
        source.fetch(query("error_rate"), cursor, 0, 1)
        source.fetch(query("latency"), source.begin(query("latency")), 0, 1)
    assert len(built) == 1
    http.ssl_context.cache_clear()
