"""The AWS providers' entries in the registry: their config validators, settings and honest
capabilities."""

from __future__ import annotations

import pytest

from integrations import registry
from integrations.aws.ecs import EcsTarget
from integrations.aws.lambdas import LambdaTarget
from integrations.metrics.cloudwatch import CloudWatchMetrics

LISTENER = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/api/50dc/6c49"
TG = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/api-blue/73e2"
ECS = {
    "cluster": "prod",
    "listener_arn": LISTENER,
    "slots": {
        "blue": {"service": "api-blue", "target_group_arn": TG},
        "green": {"service": "api-green", "target_group_arn": TG.replace("blue", "green")},
    },
}


def test_a_complete_ecs_config_is_valid():
    assert registry.validate_target_config("aws-ecs", ECS) == []
    with_role = {**ECS, "region": "eu-west-1", "role_arn": "arn:aws:iam::123456789012:role/d"}
    assert registry.validate_target_config("aws-ecs", with_role) == []


def test_every_problem_with_an_ecs_config_is_named_by_path():
    config = {
        "cluster": "",
        "slots": {"blue": {"service": "api-blue", "target_group_arn": "tg-1", "port": 80}},
        "region": "Ireland",
        "role_arn": "deployer",
        "access_key": "AKIA...",
    }
    paths = [path for path, _ in registry.validate_target_config("aws-ecs", config)]
    assert paths == [
        "access_key",
        "region",
        "role_arn",
        "cluster",
        "listener_arn",
        "slots.blue.port",
        "slots.blue.target_group_arn",
    ]


def test_credentials_have_no_place_in_a_target_config():
    errors = registry.validate_target_config("aws-lambda", {"function_name": "f", "secret": "x"})
    assert errors == [("secret", f"unknown key 'secret' (known: {', '.join(_lambda_keys())})")]


def _lambda_keys():
    from integrations.aws.config import LAMBDA_KEYS

    return LAMBDA_KEYS


def test_route53_needs_a_zone_a_name_and_slots_with_values():
    errors = registry.validate_target_config("aws-route53", {"ttl": -1, "record_type": "MX"})
    assert [p for p, _ in errors] == [
        "hosted_zone_id",
        "record_name",
        "record_type",
        "ttl",
        "slots",
    ]


@pytest.mark.parametrize(
    ("provider", "capabilities"),
    [
        (
            "aws-ecs",
            ["weights", "preview", "header_rules", "header_routes", "cookie_rules", "warm_slot"],
        ),
        ("aws-lambda", ["weights", "warm_slot"]),  # warm_slot: the rollback window
        ("aws-route53", ["weights"]),
    ],
)
def test_capabilities_are_only_what_aws_routing_does(provider, capabilities):
    assert registry.capabilities(provider).names() == capabilities


def test_the_providers_read_the_aws_settings(settings):
    settings.AWS_REGION, settings.AWS_ROLE_ARN = "eu-west-1", ""
    settings.AWS_ENDPOINT_URL = "http://127.0.0.1:1"
    target = registry.build_target("aws-ecs", "api.prod", ECS)
    assert isinstance(target, EcsTarget) and target.options.region == "eu-west-1"
    lam = registry.build_target(
        "aws-lambda", "f.prod", {"function_name": "f", "region": "eu-north-1"}
    )
    assert isinstance(lam, LambdaTarget) and lam.options.region == "eu-north-1"
    source = registry.build_metrics_source("aws-ecs", "api.prod")
    assert isinstance(source, CloudWatchMetrics)
    assert source.options.endpoint_url == "http://127.0.0.1:1"
