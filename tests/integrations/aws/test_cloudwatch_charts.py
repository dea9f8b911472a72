"""The live charts of an aws-ecs target (``releases.live.charts.sample_all``, the same round as
every provider's): its ALB metrics are put into a real moto_server process by the test and read
back through CloudWatch GetMetricData, one period as one sample."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

import pytest

from integrations.metrics.cloudwatch import CloudWatchMetrics, alb_dimensions
from releases.live import charts
from tests import factories
from tests.integrations.aws.moto import make_ecs_world

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def own_keys(monkeypatch):
    monkeypatch.setattr(charts, "KEY_PREFIX", f"test-metrics-{uuid.uuid4().hex[:10]}")
    monkeypatch.setattr(charts, "publish_metrics", lambda *args: None)


def put(moto, world, slot, metric, values, at):
    dims = alb_dimensions(world.config())[slot]
    moto.client("cloudwatch").put_metric_data(
        Namespace="AWS/ApplicationELB",
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
