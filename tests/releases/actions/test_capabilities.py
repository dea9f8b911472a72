"""A strategy whose routing needs a capability the target's provider lacks is refused when the
deployment is created or the spec validated, naming the capability -- never mid-tick.

The provider lacking them is a registry entry of the test's (the local fleet's classes with no
routing capabilities), the way a DNS-only or instance-only provider would register itself."""

from __future__ import annotations

import pytest

from integrations import registry
from releases import actions
from releases.errors import InvalidSpec
from releases.governance import tokens
from releases.models import Deployment
from tests import factories
from tests.releases.api.test_api import Api, assert_error

pytestmark = pytest.mark.django_db

CANARY = {"kind": "canary", "stable_replicas": 2, "steps": [{"set_weight": 20}, {"pause": {}}]}


@pytest.fixture
def plain_provider(monkeypatch):
    local = registry.PROVIDERS["local"]
    plain = registry.Provider(
        name="plain",
        label="plain instances",
        target=local.target,
        validator=local.validator,
        settings=local.settings,
        capabilities=registry.Capabilities(instance_health=True),
    )
    monkeypatch.setitem(registry.PROVIDERS, "plain", plain)
    return plain


def test_it_refuses_a_canary_on_a_target_without_weights(plain_provider, service, dev, admin):
    factories.make_target(service, dev, provider="plain")
    factories.make_release(service, "1.1.0")
    with pytest.raises(InvalidSpec) as caught:
        actions.start_deployment(
            factories.api_actor(admin),
            service=service,
            environment=dev,
            version="1.1.0",
            strategy=CANARY,
        )
    assert "weights (weighted traffic between slots)" in caught.value.message
    assert caught.value.details["missing_capabilities"] == ["weights"]
    assert not Deployment.objects.exists()


def test_a_rolling_deploy_needs_no_routing_capability(plain_provider, service, dev, admin):
    factories.make_target(service, dev, provider="plain")
    factories.make_release(service, "1.1.0")
    d, created = actions.start_deployment(
        factories.api_actor(admin),
        service=service,
        environment=dev,
        version="1.1.0",
        strategy={"kind": "rolling", "replicas": 2},
    )
    assert created and d.strategy["kind"] == "rolling"


def test_the_api_names_the_missing_capability_on_validate_and_on_deploy(
    plain_provider, client, service, dev, admin
):
    factories.make_target(service, dev, provider="plain")
    factories.make_release(service, "1.1.0")
    api = Api(client, tokens.create(admin, "ci")[1])
    spec = {**CANARY, "route": {"header": "X-Canary"}}
    body = assert_error(
        api.post("/strategies/validate", {"strategy": spec, "provider": "plain"}),
        422,
        "invalid_spec",
    )
    assert body["details"]["missing_capabilities"] == ["header_rules", "weights"]
    assert "header-based routing" in body["message"]
    assert api.post("/strategies/validate", {"strategy": spec}).status_code == 200
    assert (
        api.post("/strategies/validate", {"strategy": spec, "provider": "local"}).status_code == 200
    )
    unknown = assert_error(
        api.post("/strategies/validate", {"strategy": spec, "provider": "nomad"}), 422
    )
    assert "local" in unknown["message"]
    body = assert_error(
        api.post(
            "/deployments",
            {"service": "api", "environment": "dev", "version": "1.1.0", "strategy": spec},
        ),
        422,
        "invalid_spec",
    )
    assert body["details"]["missing_capabilities"] == ["header_rules", "weights"]
