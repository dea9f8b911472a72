"""Header routes (Argo's setHeaderRoute) and mirror routes (setMirrorRoute) on the gateway-api
and istio routers, against the loopback fake Kubernetes API (fake_api.py: no kube-apiserver can
run here) through the official client over real HTTP: what each router writes, that the weights
read back are the default route's, and that the routers without them refuse."""

from __future__ import annotations

import pytest

from integrations import registry
from integrations.base import IntegrationError, ReleaseRef, Routing
from tests.integrations.kubernetes.conftest import target_config

V1 = ReleaseRef("1.0.0", {"image": "reg/api:1"})
V2 = ReleaseRef("2.0.0", {"image": "reg/api:2"})
GATEWAY = {"kind": "gateway-api", "route": "api"}
ISTIO = {"kind": "istio", "virtual_service": "api"}
BETA = {
    "name": "beta",
    "match": [
        {"header": "X-Beta", "value": {"exact": "yes"}},
        {"header": "X-Team", "value": {"prefix": "shop."}},
    ],
}
DARK = {
    "name": "dark",
    "percentage": 25,
    "match": [
        {"method": {"exact": "GET"}, "path": {"prefix": "/api"}},
        {"headers": {"X-Mirror": {"regex": "on|yes"}}},
    ],
}
ROUTING = Routing(
    {"blue": 90, "green": 10},
    stable_slot="blue",
    canary_slot="green",
    header_routes=(BETA,),
    mirror_routes=(DARK,),
)


def started(make_target, router):
    target = make_target(router)
    target.ensure_slot("blue", V1, 2)
    target.ensure_slot("green", V2, 1)
    return target


def test_gateway_api_writes_a_header_rule_and_a_request_mirror_filter(cluster, make_target):
    target = started(make_target, GATEWAY)
    target.set_routing(ROUTING)
    rules = cluster.get("gateway.networking.k8s.io", "httproutes", "api")["spec"]["rules"]
    root = {"type": "PathPrefix", "value": "/"}
    weighted = [
        {"name": "api-blue", "port": 80, "weight": 90},
        {"name": "api-green", "port": 80, "weight": 10},
    ]
    assert rules == [
        {
            "matches": [
                {
                    "path": root,
                    "headers": [
                        {"type": "Exact", "name": "X-Beta", "value": "yes"},
                        {"type": "RegularExpression", "name": "X-Team", "value": r"^shop\..*$"},
                    ],
                }
            ],
            "backendRefs": [{"name": "api-green", "port": 80, "weight": 1}],
        },
        {
            "matches": [
                {"path": {"type": "PathPrefix", "value": "/api"}, "method": "GET"},
                {
                    "path": root,
                    "headers": [
                        {"type": "RegularExpression", "name": "X-Mirror", "value": "^(?:on|yes)$"}
                    ],
                },
            ],
            "filters": [
                {
                    "type": "RequestMirror",
                    "requestMirror": {
                        "backendRef": {"name": "api-green", "port": 80},
                        "percent": 25,
                    },
                }
            ],
            "backendRefs": weighted,
        },
        {"matches": [{"path": root}], "backendRefs": weighted},
    ]
    status = target.status()
    assert status.weights == {"blue": 90, "green": 10}
    assert status.routing.header_routes == (BETA,)
    assert status.routing.mirror_routes == (DARK,)


def test_istio_writes_a_header_route_and_a_mirror_with_its_percentage(cluster, make_target):
    target = started(make_target, ISTIO)
    target.set_routing(ROUTING)
    http = cluster.get("networking.istio.io", "virtualservices", "api")["spec"]["http"]
    weighted = [
        {"destination": {"host": "api", "subset": "blue"}, "weight": 90},
        {"destination": {"host": "api", "subset": "green"}, "weight": 10},
    ]
    assert http == [
        {
            "name": "beta",
            "match": [{"headers": {"x-beta": {"exact": "yes"}, "x-team": {"prefix": "shop."}}}],
            "route": [{"destination": {"host": "api", "subset": "green"}}],
        },
        {
            "name": "dark",
            "match": [
                {"method": {"exact": "GET"}, "uri": {"prefix": "/api"}},
                {"headers": {"x-mirror": {"regex": "on|yes"}}},
            ],
            "route": weighted,
            "mirror": {"host": "api", "subset": "green"},
            "mirrorPercentage": {"value": 25.0},
        },
        {"route": weighted},
    ]
    assert target.status().weights == {"blue": 90, "green": 10}

    target.set_routing(Routing({"blue": 100, "green": 0}, stable_slot="blue", canary_slot="green"))
    http = cluster.get("networking.istio.io", "virtualservices", "api")["spec"]["http"]
    assert [r.get("name") for r in http] == [None]  # the routes are gone with the step


@pytest.mark.parametrize(
    "router", [{"kind": "ingress-nginx", "ingress": "api"}, {"kind": "service-selector"}]
)
def test_routers_without_them_refuse_and_the_capability_check_says_so(make_target, router):
    missing = registry.missing_capabilities(
        "kubernetes", {"header_routes", "mirroring"}, target_config(router)
    )
    assert missing == ["header_routes", "mirroring"]
    target = started(make_target, router)
    with pytest.raises(IntegrationError) as refused:
        target.set_routing(
            Routing({"blue": 100}, stable_slot="blue", canary_slot="green", mirror_routes=(DARK,))
        )
    assert refused.value.permanent
    assert "cannot do mirroring (dark)" in refused.value.message


@pytest.mark.parametrize("router", [GATEWAY, ISTIO], ids=lambda r: r["kind"])
def test_gateway_api_and_istio_declare_both(router):
    assert (
        registry.missing_capabilities(
            "kubernetes", {"header_routes", "mirroring"}, target_config(router)
        )
        == []
    )


def test_a_method_match_other_than_exact_is_refused_by_gateway_api(make_target):
    target = started(make_target, GATEWAY)
    odd = {"name": "odd", "percentage": 5, "match": [{"method": {"prefix": "G"}}]}
    with pytest.raises(IntegrationError) as refused:
        target.set_routing(
            Routing({"blue": 100}, "blue", None, "blue", "green", mirror_routes=(odd,))
        )
    assert refused.value.permanent and "exactly" in refused.value.message
