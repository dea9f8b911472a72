"""The aws-ecs target against a real moto_server process: services per slot behind an ALB
listener's weighted forward, images as derived task definition revisions."""

from __future__ import annotations

import pytest

from integrations.aws.ecs import EcsTarget
from integrations.base import IntegrationError, ReleaseRef, Routing
from tests.integrations.aws.moto import make_ecs_world


@pytest.fixture
def world(moto):
    return make_ecs_world(moto)


def target(world, settings, **extra):
    from integrations.aws.config import settings_options

    return EcsTarget("api.prod", world.config(**extra), **settings_options())


def test_ensure_slot_runs_the_image_as_a_revision_derived_from_the_current_one(
    moto, world, settings
):
    t = target(world, settings)
    t.ensure_slot("green", ReleaseRef("1.4.2", {"image": "example/api:1.4.2"}), replicas=3)

    ecs = moto.client("ecs")
    service = ecs.describe_services(cluster="prod", services=["api-green"])["services"][0]
    assert service["desiredCount"] == 3
    definition = ecs.describe_task_definition(taskDefinition=service["taskDefinition"])[
        "taskDefinition"
    ]
    assert definition["revision"] == 2
    app, sidecar = definition["containerDefinitions"]
    assert app["image"] == "example/api:1.4.2"
    assert app["dockerLabels"] == {"switchyard.version": "1.4.2"}
    assert app["portMappings"][0]["containerPort"] == 80  # the rest is the current revision's
    assert sidecar["image"] == "fluent-bit:2"
    status = t.status().slots["green"]
    assert (status.version, status.desired, status.ready) == ("1.4.2", 3, 3)


def test_ensure_slot_twice_registers_one_revision(moto, world, settings):
    t = target(world, settings)
    release = ReleaseRef("1.4.2", {"image": "example/api:1.4.2"})
    t.ensure_slot("green", release, replicas=2)
    t.ensure_slot("green", release, replicas=2)
    t.ensure_slot("green", release, replicas=1)

    families = moto.client("ecs").list_task_definitions(familyPrefix="api")["taskDefinitionArns"]
    assert len(families) == 2


def test_set_weights_writes_the_listener_forward(moto, world, settings):
    t = target(world, settings)
    t.set_weights({"blue": 90, "green": 10})

    listener = moto.client("elbv2").describe_listeners(ListenerArns=[world.listener_arn])
    groups = listener["Listeners"][0]["DefaultActions"][0]["ForwardConfig"]["TargetGroups"]
    assert {g["TargetGroupArn"]: g["Weight"] for g in groups} == {
        world.target_groups["blue"]: 90,
        world.target_groups["green"]: 10,
    }
    assert t.status().weights == {"blue": 90, "green": 10}


def test_even_weights_follow_the_desired_counts(moto, world, settings):
    t = target(world, settings)
    t.ensure_slot("blue", ReleaseRef("1.0.0", {"image": "example/api:1"}), replicas=3)
    t.set_weights(None)
    t.ensure_slot("green", ReleaseRef("1.1.0", {"image": "example/api:1.1"}), replicas=1)

    listener = moto.client("elbv2").describe_listeners(ListenerArns=[world.listener_arn])
    groups = listener["Listeners"][0]["DefaultActions"][0]["ForwardConfig"]["TargetGroups"]
    assert {g["TargetGroupArn"]: g["Weight"] for g in groups} == {
        world.target_groups["blue"]: 75,
        world.target_groups["green"]: 25,
    }
    assert t.status().weights is None  # "even", as the engine asked


def test_a_preview_sends_the_test_listener_to_one_slot(moto, world, settings):
    t = target(world, settings, test_listener_arn=world.test_listener_arn)
    t.set_routing(Routing(weights={"blue": 100, "green": 0}, preview_slot="green"))

    status = t.status()
    assert status.weights == {"blue": 100, "green": 0}
    assert status.routing.preview_slot == "green"
    assert status.preview_endpoint.endswith(":8080")
    t.set_routing(Routing(weights={"blue": 0, "green": 100}))
    assert t.status().preview_endpoint is None


def test_remove_slot_scales_the_service_to_zero(moto, world, settings):
    t = target(world, settings)
    t.ensure_slot("green", ReleaseRef("1.4.2", {"image": "example/api:1.4.2"}), replicas=2)
    t.remove_slot("green")

    service = moto.client("ecs").describe_services(cluster="prod", services=["api-green"])
    assert service["services"][0]["desiredCount"] == 0


def test_a_missing_service_is_a_permanent_error_naming_it(moto, world, settings):
    config = world.config()
    config["slots"]["green"]["service"] = "api-gone"
    from integrations.aws.config import settings_options

    t = EcsTarget("api.prod", config, **settings_options())
    with pytest.raises(IntegrationError) as caught:
        t.status()
    assert caught.value.permanent
    assert "api-gone" in caught.value.message
    assert "ecs:DescribeServices" in caught.value.message


def test_a_missing_target_group_is_a_permanent_error_naming_the_action(moto, world, settings):
    config = world.config()
    config["slots"]["green"]["target_group_arn"] = world.target_groups["green"] + "0"
    from integrations.aws.config import settings_options

    t = EcsTarget("api.prod", config, **settings_options())
    t.ensure_slot("green", ReleaseRef("1.4.2", {"image": "example/api:1.4.2"}), replicas=1)
    with pytest.raises(IntegrationError) as caught:
        t.status()
    assert caught.value.permanent
    assert "elasticloadbalancing:DescribeTargetHealth on target group" in caught.value.message
    assert "TargetGroupNotFound" in caught.value.message


def test_a_release_without_an_image_is_refused(moto, world, settings):
    with pytest.raises(IntegrationError, match="has no image") as caught:
        target(world, settings).ensure_slot("green", ReleaseRef("2.0.0", {}), replicas=1)
    assert caught.value.permanent


def test_a_listener_rule_carries_the_weights_when_one_is_named(moto, world, settings):
    elb = moto.client("elbv2")
    blue, green = world.target_groups["blue"], world.target_groups["green"]
    rule = elb.create_rule(
        ListenerArn=world.listener_arn,
        Priority=10,
        Conditions=[{"Field": "path-pattern", "Values": ["/api/*"]}],
        Actions=[
            {
                "Type": "forward",
                "ForwardConfig": {
                    "TargetGroups": [
                        {"TargetGroupArn": blue, "Weight": 100},
                        {"TargetGroupArn": green, "Weight": 0},
                    ]
                },
            }
        ],
    )["Rules"][0]["RuleArn"]
    config = world.config(rule_arn=rule)
    del config["listener_arn"]
    from integrations.aws.config import settings_options, validate_ecs

    assert validate_ecs(config) == []
    t = EcsTarget("api.prod", config, **settings_options())
    t.set_weights({"blue": 70, "green": 30})

    actions = elb.describe_rules(RuleArns=[rule])["Rules"][0]["Actions"]
    groups = actions[0]["ForwardConfig"]["TargetGroups"]
    assert {g["TargetGroupArn"]: g["Weight"] for g in groups} == {blue: 70, green: 30}
    listener = elb.describe_listeners(ListenerArns=[world.listener_arn])["Listeners"][0]
    assert listener["DefaultActions"][0]["ForwardConfig"]["TargetGroups"][0]["Weight"] == 100
    status = t.status()
    assert status.weights == {"blue": 70, "green": 30}
    assert status.endpoint.endswith(":80")  # the rule's listener


def test_registered_targets_cap_the_ready_count(moto, world, settings):
    """moto reports every registered target healthy: one target for two running tasks means one
    task has not passed the load balancer's health check yet."""
    t = target(world, settings)
    t.ensure_slot("green", ReleaseRef("1.4.2", {"image": "example/api:1.4.2"}), replicas=2)
    assert t.status().slots["green"].ready == 2  # nothing registered: the running count
    moto.client("elbv2").register_targets(
        TargetGroupArn=world.target_groups["green"], Targets=[{"Id": "10.0.1.10", "Port": 80}]
    )
    green = t.status().slots["green"]
    assert (green.desired, green.ready) == (2, 1)
    assert [i.state for i in green.instances] == ["ready", "starting"]
