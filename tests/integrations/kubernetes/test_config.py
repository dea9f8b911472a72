"""A kubernetes target's config is checked path by path; what it can do follows its router.
(Pure checks: nothing here talks to a cluster.)"""

from __future__ import annotations

import pytest

from integrations import registry
from integrations.kubernetes.config import capabilities_for, describe, validate_config
from releases import actions
from releases.errors import InvalidSpec
from tests import factories
from tests.integrations.kubernetes.conftest import target_config


def errors_of(config):
    return dict(validate_config(config))


def test_a_complete_config_has_no_problems():
    assert validate_config(target_config()) == []
    assert validate_config(target_config({"kind": "ingress-nginx", "ingress": "api"})) == []
    in_cluster = {**target_config({"kind": "service-selector"}), "cluster": {"in_cluster": True}}
    assert validate_config(in_cluster) == []


def test_it_names_every_missing_key_by_path():
    assert errors_of({}) == {
        "cluster": "is required",
        "namespace": "is required",
        "name": "is required",
        "template": "is required",
        "router": "is required",
    }


def test_it_explains_bad_values_by_path():
    config = target_config(
        {"kind": "gateway-api"},
        namespace="Shop_1",
        port=0,
        cluster={"context": "dev", "in_cluster": True},
        template={"manifest": {"spec": {"containers": [{"image": "x"}]}}},
        credentials="no",
    )
    errors = errors_of(config)
    assert errors["credentials"].startswith("unknown key 'credentials'")
    assert "DNS label" in errors["namespace"]
    assert errors["port"] == "must be a port number (1-65535), got 0"
    assert errors["cluster"].startswith('name exactly one of "context"')
    assert errors["template.manifest.spec.containers.0.name"] == "is required"
    assert errors["router.route"] == "is required for the gateway-api router"


def test_it_refuses_an_unknown_router_naming_the_known_ones():
    assert errors_of(target_config({"kind": "traefik"}))["router.kind"] == (
        "must be one of service-selector, gateway-api, ingress-nginx, istio, got 'traefik'"
    )
    assert errors_of(target_config({"kind": "istio"})) == {
        "router.virtual_service": "is required for the istio router"
    }


def test_a_name_leaves_room_for_the_slot_suffixes():
    assert "at most 45" in errors_of(target_config(name="a" * 46))["name"]


def test_capabilities_follow_the_router():
    selector = capabilities_for(target_config({"kind": "service-selector"}))
    gateway = capabilities_for(target_config())
    nginx = capabilities_for(target_config({"kind": "ingress-nginx", "ingress": "api"}))
    assert selector.names() == ["switch", "preview", "instance_health", "warm_slot"]
    assert gateway.names() == [
        "weights",
        "preview",
        "header_rules",
        "header_routes",
        "mirroring",
        "instance_health",
        "warm_slot",
    ]
    assert nginx.names() == [
        "weights",
        "preview",
        "header_rules",
        "cookie_rules",
        "instance_health",
        "warm_slot",
    ]
    # without a config, the registry answers what some router can do
    assert registry.capabilities("kubernetes").weights


def test_the_registry_validates_kubernetes_configs():
    assert registry.validate_target_config("kubernetes", target_config()) == []
    assert ("namespace", "is required") in registry.validate_target_config("kubernetes", {})


def test_the_board_description_names_the_cluster_namespace_and_router():
    assert describe(target_config()) == "dev · shop/api · gateway-api"
    assert registry.describe("kubernetes", target_config()) == "dev · shop/api · gateway-api"
    assert registry.describe("local", {}) == ""


CANARY = {"kind": "canary", "steps": [{"set_weight": 20}, {"pause": {}}], "stable_replicas": 2}


@pytest.mark.django_db
def test_starting_a_canary_on_a_service_selector_target_is_refused_naming_weights():
    target = factories.make_target(
        provider="kubernetes", config=target_config({"kind": "service-selector"})
    )
    factories.make_release(target.service, "1.0.0", artifact={"image": "reg/api:1"})
    with pytest.raises(InvalidSpec) as refused:
        actions.start_deployment(
            factories.api_actor(),
            service=target.service,
            environment=target.environment,
            version="1.0.0",
            strategy=CANARY,
        )
    assert refused.value.details["missing_capabilities"] == ["weights"]


@pytest.mark.django_db
def test_the_same_canary_starts_on_a_gateway_api_target():
    target = factories.make_target(provider="kubernetes", config=target_config())
    factories.make_release(target.service, "1.0.0", artifact={"image": "reg/api:1"})
    d, _ = actions.start_deployment(
        factories.api_actor(),
        service=target.service,
        environment=target.environment,
        version="1.0.0",
        strategy=CANARY,
    )
    assert d.strategy["kind"] == "canary"
