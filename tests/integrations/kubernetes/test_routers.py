"""The kubernetes routers against a loopback fake of the Kubernetes API (fake_api.py here:
no kube-apiserver can run here), through the official client over real HTTP: what each writes
for a routing, what it reads back, and what it refuses."""

from __future__ import annotations

import pytest

from integrations.base import IntegrationError, ReleaseRef, Routing

V1 = ReleaseRef("1.0.0", {"image": "reg/api:1"})
V2 = ReleaseRef("2.0.0", {"image": "reg/api:2"})
SELECTOR = {"kind": "service-selector"}
NGINX = {"kind": "ingress-nginx", "ingress": "api"}
NG = "nginx.ingress.kubernetes.io/"


def both_slots(target):
    target.ensure_slot("blue", V1, 2)
    target.ensure_slot("green", V2, 1)


def selector(cluster, name):
    return cluster.get("", "services", name)["spec"]["selector"]


def test_blue_green_switches_the_service_selector_and_previews_the_idle_slot(cluster, make_target):
    target = make_target(SELECTOR)
    both_slots(target)
    target.set_routing(
        Routing(
            {"blue": 100, "green": 0}, preview_slot="green", stable_slot="blue", canary_slot="green"
        )
    )
    assert selector(cluster, "api")["switchyard.dev/slot"] == "blue"
    assert selector(cluster, "api-preview")["switchyard.dev/slot"] == "green"
    status = target.status()
    assert status.weights == {"blue": 100, "green": 0}
    assert status.preview_endpoint == "http://api-preview.shop.svc.cluster.local:80"

    target.set_routing(Routing({"blue": 0, "green": 100}, stable_slot="blue", canary_slot="green"))
    assert selector(cluster, "api")["switchyard.dev/slot"] == "green"
    assert selector(cluster, "api-preview")["switchyard.dev/slot"] == "none"
    assert target.status().weights == {"blue": 0, "green": 100}
    assert target.status().preview_endpoint is None


def test_the_service_selector_router_refuses_a_split(make_target):
    target = make_target(SELECTOR)
    with pytest.raises(IntegrationError) as refused:
        target.set_routing(Routing({"blue": 70, "green": 30}))
    assert refused.value.permanent
    assert "service-selector router cannot do weights" in refused.value.message


def test_even_routing_selects_every_slot(cluster, make_target):
    target = make_target(SELECTOR)
    both_slots(target)
    target.set_routing(Routing(None))
    assert "switchyard.dev/slot" not in selector(cluster, "api")
    assert target.status().weights is None


def test_gateway_api_writes_weights_and_header_matches(cluster, make_target):
    target = make_target()
    both_slots(target)
    target.set_routing(
        Routing(
            {"blue": 80, "green": 20}, stable_slot="blue", canary_slot="green", header="X-Canary"
        )
    )
    route = cluster.get("gateway.networking.k8s.io", "httproutes", "api")
    assert route["spec"]["parentRefs"] == [{"name": "public"}]  # what the team wrote stays
    always, never, default = route["spec"]["rules"]
    assert always["matches"][0]["headers"] == [
        {"type": "Exact", "name": "X-Canary", "value": "always"}
    ]
    assert always["backendRefs"] == [{"name": "api-green", "port": 80, "weight": 1}]
    assert never["backendRefs"] == [{"name": "api-blue", "port": 80, "weight": 1}]
    assert default["backendRefs"] == [
        {"name": "api-blue", "port": 80, "weight": 80},
        {"name": "api-green", "port": 80, "weight": 20},
    ]
    # every backend exists, selecting its slot
    assert selector(cluster, "api-green")["switchyard.dev/slot"] == "green"
    assert target.status().weights == {"blue": 80, "green": 20}
    assert target.status().routing.header == "X-Canary"


def test_gateway_api_reads_back_a_hand_edit(cluster, make_target):
    target = make_target()
    both_slots(target)
    target.set_routing(Routing({"blue": 80, "green": 20}))
    route = cluster.get("gateway.networking.k8s.io", "httproutes", "api")
    route["spec"]["rules"][-1]["backendRefs"][0]["weight"] = 100
    route["spec"]["rules"][-1]["backendRefs"][1]["weight"] = 0
    cluster.objects[("gateway.networking.k8s.io", "httproutes", "shop", "api")] = route
    assert target.status().weights == {"blue": 100, "green": 0}


def test_gateway_api_writes_nothing_when_the_route_says_it_already(cluster, make_target):
    target = make_target()
    both_slots(target)
    routing = Routing({"blue": 50, "green": 50})
    target.set_routing(routing)
    before = len(cluster.requests)
    target.set_routing(routing)
    assert [m for m, _, _ in cluster.calls(before)] == ["GET", "GET"]  # preview, route


def test_a_missing_http_route_is_permanent(cluster, make_target):
    target = make_target({"kind": "gateway-api", "route": "nope"})
    with pytest.raises(IntegrationError) as failed:
        target.set_routing(Routing({"blue": 100}))
    assert failed.value.permanent and 'httproutes.gateway.networking.k8s.io "nope"' in str(
        failed.value
    )


def test_ingress_nginx_keeps_a_canary_ingress_beside_the_stable_one(cluster, make_target):
    target = make_target(NGINX)
    both_slots(target)
    target.set_routing(
        Routing(
            {"blue": 90, "green": 10},
            stable_slot="blue",
            canary_slot="green",
            header="X-Canary",
            cookie="canary",
        )
    )
    stable = cluster.get("networking.k8s.io", "ingresses", "api")
    canary = cluster.get("networking.k8s.io", "ingresses", "api-canary")
    backend = stable["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": "api-blue", "port": {"number": 80}}
    canary_backend = canary["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert canary_backend["name"] == "api-green"
    assert canary["spec"]["rules"][0]["host"] == "api.example.com"
    notes = canary["metadata"]["annotations"]
    assert notes[NG + "canary"] == "true"
    assert notes[NG + "canary-weight"] == "10"
    assert notes[NG + "canary-by-header"] == "X-Canary"
    assert notes[NG + "canary-by-cookie"] == "canary"
    assert target.status().weights == {"blue": 90, "green": 10}

    # abort: every request to the stable slot, the canary's weight to zero
    target.set_routing(Routing({"blue": 100, "green": 0}, stable_slot="blue", canary_slot="green"))
    notes = cluster.get("networking.k8s.io", "ingresses", "api-canary")["metadata"]["annotations"]
    assert notes[NG + "canary-weight"] == "0"
    assert NG + "canary-by-header" not in notes
    assert target.status().weights == {"blue": 100, "green": 0}


def test_ingress_nginx_refuses_an_ingress_that_routes_elsewhere(cluster, make_target):
    target = make_target({"kind": "ingress-nginx", "ingress": "other"})
    from tests.integrations.kubernetes.conftest import ingress

    cluster.put(ingress("other", service="someone-else"))
    with pytest.raises(IntegrationError) as failed:
        target.set_routing(Routing({"blue": 100}))
    assert failed.value.permanent and "routes to no Service of this target" in str(failed.value)


def test_set_weights_keeps_the_rest_of_the_routing(make_target):
    target = make_target(NGINX)
    both_slots(target)
    target.set_routing(
        Routing(
            {"blue": 90, "green": 10}, stable_slot="blue", canary_slot="green", header="X-Canary"
        )
    )
    target.set_weights({"blue": 50, "green": 50})
    status = target.status()
    assert status.weights == {"blue": 50, "green": 50}
    assert status.routing.header == "X-Canary"


ISTIO = {"kind": "istio", "virtual_service": "api"}
VS = "networking.istio.io", "virtualservices", "api"


def test_istio_weights_routes_over_subsets_keyed_by_the_slot_label(cluster, make_target):
    target = make_target(ISTIO)
    both_slots(target)
    target.set_routing(
        Routing(
            {"blue": 95, "green": 5},
            stable_slot="blue",
            canary_slot="green",
            header="X-Canary",
            cookie="canary",
        )
    )
    rule = cluster.get("networking.istio.io", "destinationrules", "api")
    assert rule["spec"] == {
        "host": "api",
        "subsets": [
            {"name": "blue", "labels": {"switchyard.dev/slot": "blue"}},
            {"name": "green", "labels": {"switchyard.dev/slot": "green"}},
        ],
    }
    vs = cluster.get(*VS)
    assert vs["spec"]["gateways"] == ["public"]  # what the team wrote stays
    header_always, cookie_always, header_never, cookie_never, default = vs["spec"]["http"]
    assert header_always == {
        "match": [{"headers": {"X-Canary": {"exact": "always"}}}],
        "route": [{"destination": {"host": "api", "subset": "green"}}],
    }
    assert cookie_always["match"][0]["headers"]["cookie"]["regex"] == (
        r"^(.*?;\s*)?(canary=always)(;.*)?$"
    )
    assert header_never["route"] == [{"destination": {"host": "api", "subset": "blue"}}]
    assert cookie_never["route"] == [{"destination": {"host": "api", "subset": "blue"}}]
    assert default == {
        "route": [
            {"destination": {"host": "api", "subset": "blue"}, "weight": 95},
            {"destination": {"host": "api", "subset": "green"}, "weight": 5},
        ]
    }
    assert target.status().weights == {"blue": 95, "green": 5}
    # even: one destination, the target's Service (every slot)
    target.set_routing(Routing(None))
    assert cluster.get(*VS)["spec"]["http"] == [{"route": [{"destination": {"host": "api"}}]}]
    assert target.status().weights is None
    assert selector(cluster, "api") == {
        "app.kubernetes.io/name": "api",
        "app.kubernetes.io/managed-by": "switchyard",
    }
