"""integrations.registry: the one list of providers, what each needs and what it can do."""

from __future__ import annotations

import pytest

from integrations import registry
from integrations.base import IntegrationError
from integrations.local.target import LocalTarget
from integrations.metrics.local import LocalMetrics
from strategies.spec import normalise, required_capabilities

CANARY = {"kind": "canary", "stable_replicas": 2, "steps": [{"set_weight": 20}]}


def test_the_database_choices_come_from_the_registry():
    from releases.models import Target

    field = Target._meta.get_field("provider")
    assert field.choices == registry.provider_choices()
    assert ("local", "local fleet") in registry.provider_choices()


def test_the_local_provider_reads_its_own_settings(settings):
    settings.FLEET_URL, settings.FLEET_TOKEN = "http://127.0.0.1:1", "fleet-secret"
    target = registry.build_target("local", "api.dev", {})
    assert isinstance(target, LocalTarget)
    assert registry.options("local") == {"fleet_url": "http://127.0.0.1:1", "token": "fleet-secret"}
    source = registry.build_metrics_source("local", "api.dev")
    assert isinstance(source, LocalMetrics) and source.target == "api.dev"


def test_an_unknown_provider_is_a_permanent_error_naming_the_known_ones():
    with pytest.raises(IntegrationError) as caught:
        registry.build_target("nomad", "api.dev", {})
    assert caught.value.permanent and "local" in caught.value.message
    known = ", ".join(sorted(registry.PROVIDERS))
    assert registry.validate_target_config("nomad", {}) == [
        ("provider", f"unknown provider 'nomad': use one of {known}")
    ]


@pytest.mark.parametrize(
    ("spec", "needed"),
    [
        ({"kind": "recreate", "replicas": 2}, set()),
        ({"kind": "rolling", "replicas": 2}, set()),
        (CANARY, {"weights"}),
        (
            {**CANARY, "route": {"header": "X-Canary", "sticky_key": "cookie:uid"}},
            {"weights", "header_rules", "sticky"},
        ),
        ({**CANARY, "route": {"cookie": "canary"}}, {"weights", "cookie_rules"}),
        ({"kind": "blue_green", "replicas": 2}, {"switch"}),
        ({"kind": "blue_green", "replicas": 2, "smoke": [{"path": "/"}]}, {"switch", "preview"}),
    ],
)
def test_each_strategy_names_the_capabilities_it_needs(spec, needed):
    assert required_capabilities(normalise(spec)) == needed


def test_the_local_fleet_names_what_it_can_do():
    caps = registry.capabilities("local")
    assert caps.names() == [
        "weights",
        "preview",
        "header_rules",
        "header_routes",
        "cookie_rules",
        "sticky",
        "mirroring",
        "instance_health",
        "experiment_slots",
        "warm_slot",
    ]
    assert registry.missing_capabilities("local", {"weights", "teleport"}) == ["teleport"]
