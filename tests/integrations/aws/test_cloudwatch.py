"""CloudWatch as a metrics source against a real moto_server process: metric data put by the
test and read back by the provider per arm (one target group per slot), alarms set by the test,
and an alarm that rolls an ECS canary back through the reconcile loop."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import pytest

from integrations.aws.config import settings_options
from integrations.base import Arm, IntegrationError, MetricQuery
from integrations.metrics import build_metrics
from integrations.metrics.cloudwatch import CloudWatchMetrics, _period
from releases.analysis import templates
from releases.models import State
from tests import factories
from tests.integrations.aws.moto import make_ecs_world
from tests.integrations.aws.test_aws_ecs_reconcile import deploy, live, tick_until, weights

GROUPS = {"blue": "targetgroup/api-blue/1111", "green": "targetgroup/api-green/2222"}


def put(moto, metric, group, values, namespace="AWS/ApplicationELB"):
    moto.client("cloudwatch").put_metric_data(
        Namespace=namespace,
        MetricData=[
            {
                "MetricName": metric,
                "Dimensions": [
                    {"Name": "LoadBalancer", "Value": "app/api/50dc"},
                    {"Name": "TargetGroup", "Value": group},
                ],
                "Timestamp": datetime.now(UTC),
                "Value": value,
            }
            for value in values
        ],
    )


def alb_query(metric, stat="Sum"):
    return json.dumps(
        {
            "namespace": "AWS/ApplicationELB",
            "metric": metric,
            "stat": stat,
            "dimensions": {"LoadBalancer": "app/api/50dc", "TargetGroup": GROUPS},
        }
    )


def query(mode, **extra):
    return MetricQuery(
        mode=mode,
        baseline=Arm("blue", "1.0.0"),
        canary=Arm("green", "2.0.0"),
        target="api.prod",
        **extra,
    )


def test_counts_read_each_arms_target_group_errors_and_requests(moto):
    put(moto, "RequestCount", GROUPS["blue"], [100, 100])
    put(moto, "HTTPCode_Target_5XX_Count", GROUPS["blue"], [1])
    put(moto, "RequestCount", GROUPS["green"], [50])
    put(moto, "HTTPCode_Target_5XX_Count", GROUPS["green"], [5, 5])
    source = build_metrics("cloudwatch", target="api.prod")
    q = query(
        "counts",
        query=alb_query("HTTPCode_Target_5XX_Count"),
        total_query=alb_query("RequestCount"),
    )
    now = time.time()
    got = source.fetch(q, source.begin(q), now - 300, now + 60)
    assert (got["baseline"]["total"], got["baseline"]["errors"]) == (200, 1)
    assert (got["canary"]["total"], got["canary"]["errors"]) == (50, 10)
    assert got["canary"]["weights"] == [40, 10]


def test_instant_reads_the_latest_value_of_each_arm(moto):
    put(moto, "TargetResponseTime", GROUPS["blue"], [0.1])
    put(moto, "TargetResponseTime", GROUPS["green"], [0.9])
    source = CloudWatchMetrics(target="api.prod", **settings_options())
    q = query("instant", query=alb_query("TargetResponseTime", "Average"), step=60)
    now = time.time()
    got = source.fetch(q, {}, now - 30, now + 30)
    assert got == {"baseline": {"values": [0.1]}, "canary": {"values": [0.9]}}


def test_no_datapoints_is_an_empty_series(moto):
    source = CloudWatchMetrics(**settings_options())
    q = query("range", query=alb_query("RequestCount"), step=60)
    now = time.time()
    assert source.fetch(q, {}, now - 120, now) == {
        "baseline": {"values": []},
        "canary": {"values": []},
    }


def test_alarms_read_one_when_in_alarm(moto):
    cw = moto.client("cloudwatch")
    for name in ("api-5xx", "api-latency"):
        cw.put_metric_alarm(
            AlarmName=name,
            MetricName="HTTPCode_Target_5XX_Count",
            Namespace="AWS/ApplicationELB",
            Statistic="Sum",
            Period=60,
            EvaluationPeriods=1,
            Threshold=10,
            ComparisonOperator="GreaterThanThreshold",
        )
    cw.set_alarm_state(AlarmName="api-latency", StateValue="ALARM", StateReason="test")
    source = CloudWatchMetrics(**settings_options())
    q = query("instant", query='{"alarms": ["api-5xx", "api-latency"]}')
    got = source.fetch(q, {}, time.time() - 60, time.time())
    assert got["canary"] == {"values": [0.0, 1.0]}


def test_a_missing_alarm_or_a_bad_query_is_permanent(moto):
    source = CloudWatchMetrics(**settings_options())
    for text, words in (('{"alarms": ["nope"]}', "no alarm named nope"), ("{nope", "is JSON")):
        with pytest.raises(IntegrationError, match=words) as caught:
            source.fetch(query("instant", query=text), {}, time.time() - 60, time.time())
        assert caught.value.permanent


def test_periods_are_what_cloudwatch_accepts():
    assert [_period(s) for s in (0.5, 3, 10, 45, 60, 61, 300)] == [1, 5, 10, 60, 60, 120, 300]


ALARM_TEMPLATE = {
    "metrics": [
        {
            "name": "alarms",
            "provider": "cloudwatch",
            "query": '{"alarms": ["api-5xx"]}',
            "failure_condition": "canary > 0",
            "interval": "200ms",
        }
    ]
}


@pytest.fixture
def world(moto):
    return make_ecs_world(moto)


@pytest.fixture
def ecs_target(world, service, dev):
    return factories.make_target(service, dev, provider="aws-ecs", config=world.config())


def test_an_alarm_in_alarm_rolls_the_canary_back(moto, world, ecs_target):
    cw = moto.client("cloudwatch")
    cw.put_metric_alarm(
        AlarmName="api-5xx",
        MetricName="HTTPCode_Target_5XX_Count",
        Namespace="AWS/ApplicationELB",
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=10,
        ComparisonOperator="GreaterThanThreshold",
    )
    templates.save_template("alarms", ALARM_TEMPLATE)
    live(ecs_target)
    spec = {
        "kind": "canary",
        "steps": [{"set_weight": 20}, {"pause": {}}],
        "stable_replicas": 2,
        "analysis": {"template": "alarms"},
    }
    d = deploy(ecs_target, "2.0.0", spec)
    d = tick_until(d, lambda d: d.state == State.PAUSED, what="the pause")
    stable, canary = d.stable_slot, d.canary_slot
    assert weights(moto, world.listener_arn, world) == {stable: 80, canary: 20}
    cw.set_alarm_state(AlarmName="api-5xx", StateValue="ALARM", StateReason="5xx > 10")
    # the loop's own decision (no operator command): rolled back, the rollout failed
    d = tick_until(d, lambda d: d.state == State.FAILED, what="the rollback")
    assert weights(moto, world.listener_arn, world) == {stable: 100, canary: 0}
    assert "alarms" in d.failure_reason, d.failure_reason
