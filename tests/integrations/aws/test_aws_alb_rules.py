"""Header and cookie rules on an ALB listener (aws-ecs), against a real moto_server process:
listener rules with http-header conditions forwarding to a slot's target group, in the band of
priorities the target owns, modified in place and removed with the step."""

from __future__ import annotations

import pytest

from integrations import registry
from integrations.aws.config import settings_options, validate_ecs
from integrations.aws.ecs import EcsTarget
from integrations.base import IntegrationError, Routing
from tests.integrations.aws.moto import make_ecs_world

PAIR = {"stable_slot": "blue", "canary_slot": "green"}
BETA = {
    "name": "beta",
    "match": [
        {"header": "X-Beta", "value": {"exact": "yes"}},
        {"header": "X-Team", "value": {"prefix": "shop"}},
    ],
}


@pytest.fixture
def world(moto):
    return make_ecs_world(moto)


def ours(moto, world):
    """Our rules on the production listener: priority -> (conditions, target group slot)."""
    slot_of = {arn: slot for slot, arn in world.target_groups.items()}
    rules = moto.client("elbv2").describe_rules(ListenerArn=world.listener_arn)["Rules"]
    out = {}
    for rule in rules:
        if rule["Priority"] == "default":
            continue
        conditions = [
            (c["HttpHeaderConfig"]["HttpHeaderName"], c["HttpHeaderConfig"]["Values"])
            for c in rule["Conditions"]
        ]
        out[int(rule["Priority"])] = (conditions, slot_of[rule["Actions"][0]["TargetGroupArn"]])
    return out


def test_header_cookie_and_header_route_rules_forward_to_their_slots(moto, world):
    target = EcsTarget("api.prod", world.config(), **settings_options())
    target.set_routing(
        Routing(
            {"blue": 90, "green": 10},
            header="X-Canary",
            cookie="canary",
            header_routes=(BETA,),
            **PAIR,
        )
    )
    assert ours(moto, world) == {
        40000: ([("X-Canary", ["always"])], "green"),
        40001: ([("X-Canary", ["never"])], "blue"),
        40002: ([("Cookie", ["*canary=always*"])], "green"),
        40003: ([("Cookie", ["*canary=never*"])], "blue"),
        40004: ([("X-Beta", ["yes"]), ("X-Team", ["shop*"])], "green"),
    }
    assert target.status().weights == {"blue": 90, "green": 10}

    # the next step keeps only the header rule; an abort removes every rule after the weights
    target.set_routing(Routing({"blue": 50, "green": 50}, header="X-Canary", **PAIR))
    assert ours(moto, world) == {
        40000: ([("X-Canary", ["always"])], "green"),
        40001: ([("X-Canary", ["never"])], "blue"),
    }
    target.set_routing(Routing({"blue": 100, "green": 0}, **PAIR))
    assert ours(moto, world) == {}
    assert target.status().weights == {"blue": 100, "green": 0}


def test_the_band_of_priorities_is_the_configs_and_other_rules_stay(moto, world):
    elb = moto.client("elbv2")
    theirs = elb.create_rule(
        ListenerArn=world.listener_arn,
        Priority=5,
        Conditions=[{"Field": "path-pattern", "Values": ["/admin/*"]}],
        Actions=[{"Type": "forward", "TargetGroupArn": world.target_groups["blue"]}],
    )["Rules"][0]["RuleArn"]
    target = EcsTarget("api.prod", world.config(header_rule_priority=100), **settings_options())
    target.set_routing(Routing({"blue": 90, "green": 10}, header="X-Canary", **PAIR))
    target.set_routing(Routing({"blue": 100, "green": 0}, **PAIR))
    rules = elb.describe_rules(ListenerArn=world.listener_arn)["Rules"]
    assert [r["RuleArn"] for r in rules if r["Priority"] != "default"] == [theirs]


def test_a_regex_header_route_is_refused_before_anything_is_written(moto, world):
    target = EcsTarget("api.prod", world.config(), **settings_options())
    odd = {"name": "odd", "match": [{"header": "X-Beta", "value": {"regex": "y.s"}}]}
    with pytest.raises(IntegrationError) as refused:
        target.set_routing(Routing({"blue": 50, "green": 50}, header_routes=(odd,), **PAIR))
    assert refused.value.permanent and "regular expression" in refused.value.message
    listener = moto.client("elbv2").describe_listeners(ListenerArns=[world.listener_arn])
    groups = listener["Listeners"][0]["DefaultActions"][0]["ForwardConfig"]["TargetGroups"]
    assert [g["Weight"] for g in groups] == [100, 0]  # the weights were not moved either


def test_aws_ecs_declares_the_rules_and_validates_the_priority(world):
    assert (
        registry.missing_capabilities("aws-ecs", {"header_rules", "cookie_rules", "header_routes"})
        == []
    )
    assert registry.missing_capabilities("aws-ecs", {"sticky", "mirroring"}) == [
        "mirroring",
        "sticky",
    ]
    errors = dict(validate_ecs(world.config(header_rule_priority=49990)))
    assert "header_rule_priority" in errors
