"""Request samples for the live charts (``releases.live.charts``): the arithmetic, the Redis window,
and a sampling round against a real fleet agent with real traffic through its router."""

from __future__ import annotations

import time
import uuid

import pytest

from integrations.base import IntegrationError
from integrations.local.process import start_agent
from integrations.local.traffic import Traffic
from releases.live import charts
from tests import factories
from tests.integrations.fleet_helpers import Control, wait_until

BUCKETS = ["5", "10", "25", "50", "100", "250", "500", "1000", "2500", "5000", "10000", "+Inf"]


@pytest.fixture(autouse=True)
def own_keys(monkeypatch):
    """A key prefix of our own: target ids repeat across test runs sharing this Redis db."""
    monkeypatch.setattr(charts, "KEY_PREFIX", f"test-metrics-{uuid.uuid4().hex[:10]}")


def counters(total, errors=0, buckets=None, versions=None):
    cumulative = dict(zip(BUCKETS, buckets or [total] * len(BUCKETS), strict=True))
    return {
        "requests": {"2xx": total - errors, "5xx": errors},
        "total": total,
        "buckets": cumulative,
        "versions": versions or {"1.0.0": total},
    }


# --- the arithmetic -------------------------------------------------------------------------------


def test_quantiles_interpolate_within_the_bucket_that_holds_them():
    # 100 requests: 50 under 10 ms, 40 in (10, 25], 10 in (25, 50]
    buckets = [(5.0, 0), (10.0, 50), (25.0, 90), (50.0, 100), (float("inf"), 100)]
    assert charts.quantile(buckets, 0.5) == pytest.approx(10.0)
    assert charts.quantile(buckets, 0.9) == pytest.approx(25.0)
    assert charts.quantile(buckets, 0.95) == pytest.approx(37.5)
    assert charts.quantile(buckets, 0.99) == pytest.approx(47.5)


def test_a_quantile_in_the_open_bucket_is_the_largest_bound_and_nothing_is_none():
    assert charts.quantile([(10.0, 0), (float("inf"), 5)], 0.99) == 10.0
    assert charts.quantile([(10.0, 0), (float("inf"), 0)], 0.99) is None


def test_a_slot_sample_is_rates_over_the_interval():
    before = counters(
        100, errors=2, buckets=[0, 50, 90, 100, 100, 100, 100, 100, 100, 100, 100, 100]
    )
    after = counters(300, errors=12, buckets=[0, 150, 270, 300] + [300] * 8)
    sample = charts.slot_sample(before, after, seconds=2.0)
    assert sample["rps"] == 100.0
    assert sample["requests"] == 200 and sample["errors"] == 10
    assert sample["error_rate"] == 0.05
    assert sample["p95_ms"] == pytest.approx(37.5)
    assert sample["version"] == "1.0.0"


def test_a_slot_without_requests_has_no_error_rate_or_latency():
    sample = charts.slot_sample(counters(10), counters(10), seconds=2.0)
    assert sample["rps"] == 0 and sample["error_rate"] is None and sample["p95_ms"] is None


def test_a_new_slot_counts_from_zero():
    sample = charts.slot_sample(None, counters(20), seconds=2.0)
    assert sample["rps"] == 10.0


def test_a_counter_that_went_back_gives_no_sample():
    previous = {"time": 100.0, "slots": {"blue": counters(500)}}
    reading = {"time": 102.0, "slots": {"blue": counters(20)}}  # the agent restarted
    assert charts.make_sample(previous, reading) is None


def test_readings_too_close_together_give_no_sample():
    previous = {"time": 100.0, "slots": {"blue": counters(10)}}
    assert charts.make_sample(previous, {"time": 100.2, "slots": {"blue": counters(20)}}) is None
    assert charts.make_sample(None, {"time": 100.2, "slots": {}}) is None


def test_a_sample_carries_its_seconds_and_the_routers_weights():
    previous = {"time": 100.0, "slots": {"blue": counters(10)}}
    reading = {"time": 102.5, "slots": {"blue": counters(20)}, "weights": {"blue": 20}}
    sample = charts.make_sample(previous, reading)
    assert sample["seconds"] == 2.5 and sample["weights"] == {"blue": 20}
    assert "weights" not in charts.make_sample(previous, {**reading, "weights": None})


def split_sample(t, green, blue, weights, seconds=2.0, errors=0):
    return {
        "t": t,
        "seconds": seconds,
        "weights": weights,
        "slots": {
            "green": {"requests": green, "errors": 0},
            "blue": {"requests": blue, "errors": errors},
        },
    }


SIDES = {"stable": "green", "canary": "blue"}


def test_split_rates_are_both_sides_over_the_same_seconds_at_the_latest_split():
    at_0 = {"green": 100, "blue": 0}
    at_20 = {"green": 80, "blue": 20}
    samples = [split_sample(t, 80, 0, at_0) for t in (100, 102, 104)]
    # the sample that ends at 106 began under the old split: left out, as is everything before
    samples += [split_sample(106, 70, 6, at_20)]
    samples += [split_sample(t, 64, 16, at_20, errors=1) for t in (108, 110, 112)]
    split = charts.split_rates(samples, SIDES)
    assert split["seconds"] == 6.0 and split["requests"] == 240 and split["samples"] == 3
    canary = split["sides"]["canary"]
    assert canary["share"] == 0.2 and canary["weight"] == 20.0 and canary["rps"] == 8.0
    assert canary["error_rate"] == round(3 / 48, 5)
    assert split["sides"]["stable"]["rps"] == 32.0 and split["sides"]["stable"]["weight"] == 80


def test_split_rates_keep_to_the_last_30_s_and_need_a_sample():
    weights = {"green": 50, "blue": 50}
    samples = [split_sample(t, 10, 10, weights) for t in range(100, 162, 2)]
    split = charts.split_rates(samples, SIDES)
    assert split["seconds"] == 30.0 and split["sides"]["canary"]["share"] == 0.5
    assert charts.split_rates([], SIDES) is None
    # a provider that reports no weights: the last 30 s alone
    bare = [{**s, "weights": None} for s in samples]
    assert charts.split_rates(bare, SIDES)["sides"]["canary"]["weight"] is None


def test_targets_with_an_active_deployment_are_sampled_every_round_others_every_30_s():
    class T:
        def __init__(self, pk):
            self.pk = pk

    targets = [T(1), T(2), T(3)]
    now = 1000.0
    readings = {1: {"at": now - 2}, 2: {"at": now - 2}, 3: {"at": now - 31}}
    due = charts.due_targets(targets, active={1}, readings=readings, now=now)
    assert [t.pk for t in due] == [1, 3]


# --- the window in Redis --------------------------------------------------------------------------


def test_the_store_keeps_15_minutes_of_samples_in_time_order():
    store = charts.Store()
    now = time.time()
    for t in (now - 1000, now - 30, now - 20, now - 10):
        store.add(7, {"t": t, "slots": {}})
    assert [s["t"] for s in store.since(7)] == [now - 30, now - 20, now - 10]
    assert [s["t"] for s in store.since(7, after=now - 20)] == [now - 10]
    assert store.latest(7)["t"] == now - 10
    assert store.since(8) == [] and store.latest(8) is None
    assert store.client.zcard(store._samples(7)) == 3  # the old one was trimmed on write


def test_only_one_round_runs_at_a_time():
    store = charts.Store()
    token = store.lock()
    assert token and store.lock() is None
    store.unlock(token)
    assert store.lock()


# --- a round against a real fleet agent -----------------------------------------------------------


@pytest.fixture
def agent(tmp_path):
    with start_agent(log_path=tmp_path / "fleet.log") as agent:
        yield agent


@pytest.mark.django_db
def test_a_round_samples_a_live_target_from_real_traffic(agent, settings, target, monkeypatch):
    settings.FLEET_URL, settings.FLEET_TOKEN = agent.url, agent.token
    control = Control(agent)
    endpoint = control.create_target(target.key)
    control.ensure(target.key, "blue", "1.0.0", 2, {"error_rate": 0.25, "latency_ms": 20})

    def ready():
        slot = control.http.get(f"/targets/{target.key}").json()["slots"]["blue"]
        return sum(i["state"] == "ready" for i in slot["instances"]) == 2

    wait_until(ready, timeout=20, what="2 ready instances")
    control.set_weights(target.key, {"blue": 100})
    factories.make_deployment(target, "1.0.0")  # active: sampled every round
    published = []
    monkeypatch.setattr(charts, "publish_metrics", lambda *args: published.append(args))
    store = charts.Store()
    with Traffic(endpoint, rate=100, threads=4):
        assert charts.sample_all(store=store) == 0  # the first reading is the baseline
        time.sleep(1.5)
        assert charts.sample_all(store=store) == 1
    [sample] = store.since(target.pk)
    blue = sample["slots"]["blue"]
    assert 40 < blue["rps"] < 160
    assert 0.1 < blue["error_rate"] < 0.45
    assert 20 <= blue["p95_ms"] <= 100
    assert blue["version"] == "1.0.0"
    # with the seconds it spans and the router's split as the agent read its counters
    assert sample["weights"] == {"blue": 100} and 1.0 < sample["seconds"] < 30
    assert published == [(target.pk, target.key, [sample])]
    control.close()


@pytest.mark.django_db
def test_a_round_with_the_agent_down_stores_nothing(settings, target, monkeypatch):
    factories.make_deployment(target, "1.0.0")

    def down(targets):
        raise IntegrationError("the fleet agent is not answering", permanent=False)

    assert charts.sample_all(store=charts.Store(), read=down) == 0
