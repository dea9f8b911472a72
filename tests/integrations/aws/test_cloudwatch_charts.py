"""The live charts of AWS targets (``releases.live.charts.sample_all``, the same round as every
provider's): an aws-ecs target's ALB metrics, an aws-lambda target's per-version Invocations /
Errors / Duration and an aws-route53 target's slot backends' ALB metrics are put into a real
moto_server process by the test and read back through CloudWatch GetMetricData, one period as
one sample."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

import pytest

from integrations.metrics.cloudwatch import CloudWatchMetrics, alb_dimensions
from releases.live import charts
from releases.models import State
from tests import factories
from tests.integrations.aws.moto import make_ecs_world
from tests.ticks import tick_until

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def own_keys(monkeypatch):
    monkeypatch.setattr(charts, "KEY_PREFIX", f"test-metrics-{uuid.uuid4().hex[:10]}")
    monkeypatch.setattr(charts, "publish_metrics", lambda *args: None)


def put_metrics(moto, namespace, dims, metric, values, at):
    moto.client("cloudwatch").put_metric_data(
        Namespace=namespace,
        MetricData=[
            {
                "MetricName": metric,
                "Dimensions": [{"Name": k, "Value": v} for k, v in dims.items()],
                "Timestamp": at,
                "Value": value,
            }
            for value in values
        ],
    )


def put(moto, world, slot, metric, values, at):
    put_metrics(
        moto, "AWS/ApplicationELB", alb_dimensions(world.config())[slot], metric, values, at
    )


def test_an_ecs_target_feeds_the_live_charts_from_cloudwatch(moto, service, dev):
    world = make_ecs_world(moto)
    target = factories.make_target(service, dev, provider="aws-ecs", config=world.config())
    factories.make_deployment(target, "1.0.0")
    minute = datetime.fromtimestamp((time.time() // 60 - 1) * 60 + 5, UTC)  # the last minute
    put(moto, world, "blue", "RequestCount", [600, 600], minute)
    put(moto, world, "blue", "HTTPCode_Target_5XX_Count", [6], minute)
    put(moto, world, "blue", "TargetResponseTime", [0.02] * 10, minute)
    put(moto, world, "green", "RequestCount", [60], minute)
    put(moto, world, "green", "HTTPCode_Target_5XX_Count", [30], minute)

    store = charts.Store()
    assert charts.sample_all(store=store) == 1  # a period is a sample of its own
    assert charts.sample_all(store=store) == 0  # the same period is not sampled twice
    [sample] = store.since(target.pk)
    b, g = sample["slots"]["blue"], sample["slots"]["green"]
    assert (b["requests"], b["errors"], b["rps"], b["error_rate"]) == (1200, 6, 20.0, 0.005)
    assert (g["requests"], g["errors"], g["rps"], g["error_rate"]) == (60, 30, 1.0, 0.5)
    assert sample["t"] == pytest.approx(minute.timestamp() - 5 + 60)
    # moto computes no percentile statistics (TargetResponseTime p95/p99 come back empty), so
    # latency is charted only against AWS itself
    assert CloudWatchMetrics.read_counters(["x"], configs={"x": {}}) == {}


def put_lambda(moto, dims, metric, values, at):
    put_metrics(moto, "AWS/Lambda", dims, metric, values, at)


def test_a_lambda_target_charts_each_slot_by_its_executed_version(moto, service, dev):
    """Through the reconcile loop a canary holds 50% of the ``live`` alias (two published
    versions, each behind its slot's alias); the test puts Lambda's metrics for the traffic alias
    by ``ExecutedVersion`` into moto, the sampling round reads them back per slot, and the
    deployment page's chart rows (``charts_for``) and the page's sample window
    (``charts.window``, what the live stream sends on connect) show them."""
    from releases.web.deployment import charts_for
    from tests.integrations.aws.moto import make_lambda_world
    from tests.integrations.aws.test_aws_lambda import deploy, live

    world = make_lambda_world(moto)
    target = factories.make_target(service, dev, provider="aws-lambda", config=world.config())
    live(moto, world, target)
    spec = {"kind": "canary", "steps": [{"set_weight": 50}, {"pause": {}}]}
    d = tick_until(deploy(moto, world, target, "2.0.0", spec), lambda d: d.state == State.PAUSED)
    lam = moto.client("lambda")
    version = {
        slot: lam.get_alias(FunctionName=world.function, Name=f"switchyard-{slot}")[
            "FunctionVersion"
        ]
        for slot in (d.stable_slot, d.canary_slot)
    }
    assert version[d.stable_slot] != version[d.canary_slot]
    minute = datetime.fromtimestamp((time.time() // 60 - 1) * 60 + 5, UTC)
    for slot, (calls, errors) in {d.stable_slot: (300, 3), d.canary_slot: (120, 12)}.items():
        dims = {
            "FunctionName": world.function,
            "Resource": f"{world.function}:live",
            "ExecutedVersion": version[slot],
        }
        put_lambda(moto, dims, "Invocations", [calls], minute)
        put_lambda(moto, dims, "Errors", [errors], minute)
        put_lambda(moto, dims, "Duration", [40.0] * 5, minute)
    # another alias' invocations of the same version are not the traffic alias'
    put_lambda(
        moto,
        {
            "FunctionName": world.function,
            "Resource": f"{world.function}:other",
            "ExecutedVersion": version[d.canary_slot],
        },
        "Invocations",
        [9999],
        minute,
    )

    store = charts.Store()
    assert charts.sample_all(store=store) == 1
    [sample] = charts.window(target.pk)
    stable, canary = sample["slots"][d.stable_slot], sample["slots"][d.canary_slot]
    assert (stable["requests"], stable["errors"], stable["rps"]) == (300, 3, 5.0)
    assert (canary["requests"], canary["errors"], canary["error_rate"]) == (120, 12, 0.1)
    assert (stable["version"], canary["version"]) == ("1.0.0", "2.0.0")
    rows = {row["key"]: row for row in charts_for(d, charts.latest(target.pk))}
    assert rows["rps"]["stable"] and rows["rps"]["canary"]
    assert rows["error_rate"]["canary"] != rows["error_rate"]["stable"]
    # moto computes no percentiles (Duration p95/p99 come back empty): no latency here


def test_a_route53_target_charts_the_slots_whose_backend_names_its_alb(moto, service, dev):
    """Route 53 records carry no requests and a health check counts none: a slot's chart is its
    own backend's ALB metrics (``alb`` in the slot's config), put into moto by the test."""
    zone = moto.client("route53").create_hosted_zone(Name="example.com", CallerReference="c")
    config = {
        "hosted_zone_id": zone["HostedZone"]["Id"].split("/")[-1],
        "record_name": "www.example.com",
        "slots": {
            "blue": {"value": "blue.example.com", "alb": {"load_balancer": "app/blue/1a2b"}},
            "green": {
                "value": "green.example.com",
                "alb": {"load_balancer": "app/green/3c4d", "target_group": "targetgroup/g/5e6f"},
            },
            "grey": {"value": "grey.example.com", "health_check_id": "abc"},
        },
    }
    target = factories.make_target(service, dev, provider="aws-route53", config=config)
    factories.make_deployment(target, "1.0.0")
    minute = datetime.fromtimestamp((time.time() // 60 - 1) * 60 + 5, UTC)
    for dims, count, errors in (
        ({"LoadBalancer": "app/blue/1a2b"}, 600, 0),
        ({"LoadBalancer": "app/green/3c4d", "TargetGroup": "targetgroup/g/5e6f"}, 60, 6),
    ):
        for metric, value in (("RequestCount", count), ("HTTPCode_Target_5XX_Count", errors)):
            put_metrics(moto, "AWS/ApplicationELB", dims, metric, [value], minute)
    assert charts.sample_all(store=charts.Store()) == 1
    [sample] = charts.window(target.pk)
    assert set(sample["slots"]) == {"blue", "green"}  # grey names no backend: no chart
    assert (sample["slots"]["blue"]["rps"], sample["slots"]["blue"]["errors"]) == (10.0, 0)
    assert sample["slots"]["green"]["error_rate"] == 0.1


def test_a_route53_slot_backend_must_be_named_as_cloudwatch_names_it():
    from integrations import registry

    config = {
        "hosted_zone_id": "Z1",
        "record_name": "www.example.com",
        "slots": {"blue": {"value": "b.example.com", "alb": {"load_balancer": "arn:aws:x"}}},
    }
    [(path, message)] = registry.validate_target_config("aws-route53", config)
    assert path == "slots.blue.alb" and "app/<name>/<id>" in message
