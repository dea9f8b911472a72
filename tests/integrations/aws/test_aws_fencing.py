"""Fencing on AWS against a real moto_server process: a stale worker's routing or scale call,
made after a newer tick's, is refused (``StaleFence``) and changes nothing -- on an ALB
listener's forward, an ECS service's desired count and a Lambda alias' weights.

(moto accepts ``UpdateAlias``' ``RevisionId`` but does not enforce it, so what is shown here is
the provider's own check of the recorded fence, not AWS' precondition.)"""

from __future__ import annotations

import json

import pytest

from integrations.aws.config import settings_options
from integrations.aws.ecs import EcsTarget
from integrations.aws.fencing import FENCE_TAG
from integrations.aws.lambdas import LambdaTarget
from integrations.base import ReleaseRef, Routing, StaleFence
from tests.integrations.aws.moto import make_ecs_world, make_lambda_world

ABORT = Routing({"blue": 100, "green": 0}, stable_slot="blue", canary_slot="green")


def pair(cls, key, config):
    stale, newer = cls(key, config, **settings_options()), cls(key, config, **settings_options())
    stale.fence, newer.fence = (7, 2), (7, 3)
    return stale, newer


def forward(moto, world):
    listener = moto.client("elbv2").describe_listeners(ListenerArns=[world.listener_arn])
    groups = listener["Listeners"][0]["DefaultActions"][0]["ForwardConfig"]["TargetGroups"]
    slot_of = {arn: slot for slot, arn in world.target_groups.items()}
    return {slot_of[g["TargetGroupArn"]]: g["Weight"] for g in groups}


def test_a_stale_listener_write_after_a_newer_one_is_refused(moto):
    world = make_ecs_world(moto)
    stale, newer = pair(EcsTarget, "api.prod", world.config())
    stale.set_weights({"blue": 50, "green": 50})
    newer.set_routing(ABORT)
    with pytest.raises(StaleFence) as refused:
        stale.set_weights({"blue": 50, "green": 50})
    assert "7:2 is older than 7:3" in refused.value.message
    assert forward(moto, world) == {"blue": 100, "green": 0}
    tags = moto.client("elbv2").describe_tags(ResourceArns=[world.listener_arn])
    assert {"Key": FENCE_TAG, "Value": "7:3"} in tags["TagDescriptions"][0]["Tags"]


def test_a_stale_scale_of_an_ecs_service_is_refused(moto):
    world = make_ecs_world(moto)
    stale, newer = pair(EcsTarget, "api.prod", world.config())
    release = ReleaseRef("1.1.0", {"image": "example/api:1.1"})
    newer.ensure_slot("green", release, replicas=3)
    with pytest.raises(StaleFence):
        stale.ensure_slot("green", release, replicas=1)
    with pytest.raises(StaleFence):
        stale.remove_slot("green")
    ecs = moto.client("ecs")
    service = ecs.describe_services(cluster="prod", services=["api-green"])["services"][0]
    assert service["desiredCount"] == 3
    newer.remove_slot("green")
    service = ecs.describe_services(cluster="prod", services=["api-green"])["services"][0]
    assert service["desiredCount"] == 0


def test_a_stale_lambda_alias_update_is_refused(moto):
    world = make_lambda_world(moto)
    stale, newer = pair(LambdaTarget, "thumbs.prod", world.config())
    newer.ensure_slot("blue", ReleaseRef("1.0.0", world.upload(moto, "1.0.0")), 1)
    newer.ensure_slot("green", ReleaseRef("2.0.0", world.upload(moto, "2.0.0")), 1)
    stable = moto.client("lambda").get_alias(FunctionName=world.function, Name="switchyard-blue")
    newer.set_routing(ABORT)
    with pytest.raises(StaleFence):
        stale.set_weights({"blue": 50, "green": 50})
    with pytest.raises(StaleFence):
        stale.remove_slot("green")  # a slot's alias is fenced too
    live = moto.client("lambda").get_alias(FunctionName=world.function, Name="live")
    assert live["FunctionVersion"] == stable["FunctionVersion"]
    assert not (live.get("RoutingConfig") or {}).get("AdditionalVersionWeights")
    assert json.loads(live["Description"])["fence"] == "7:3"
    assert newer.status().slots["green"].desired == 1


def test_a_stale_route53_weight_change_is_refused(moto):
    from integrations.aws.route53 import Route53Target

    r53 = moto.client("route53")
    zone = r53.create_hosted_zone(Name="example.com", CallerReference="f1")["HostedZone"]["Id"]
    config = {
        "hosted_zone_id": zone.split("/")[-1],
        "record_name": "www.example.com",
        "ttl": 30,
        "slots": {"blue": {"value": "blue.example.com"}, "green": {"value": "green.example.com"}},
    }
    stale, newer = pair(Route53Target, "web.prod", config)
    newer.ensure_slot("blue", ReleaseRef("1.0.0"), 1)
    newer.ensure_slot("green", ReleaseRef("2.0.0"), 1)
    with pytest.raises(StaleFence):  # 7:3 has written: a 7:2 change is refused
        stale.set_weights({"blue": 50, "green": 50})
    newer.set_routing(ABORT)
    with pytest.raises(StaleFence):
        stale.set_weights({"blue": 50, "green": 50})
    assert newer.status().weights == {"blue": 100, "green": 0}
    sets = r53.list_resource_record_sets(HostedZoneId=zone)["ResourceRecordSets"]
    fence = [s for s in sets if s["Name"].startswith("_switchyard-fence.")]
    assert [s["ResourceRecords"][0]["Value"] for s in fence] == ['"7:3"']
