"""Every HTTPRoute rule and VirtualService http route the provider writes is valid against the
Gateway API and Istio CRD schemas vendored in ``schemas/`` (see its README for their source and
what was kept). The objects are those the official client sent over HTTP to the loopback fake
API (fake_api.py: no kube-apiserver, hence no CRD validation, can run here), collected from its
record of writes."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from integrations.base import ReleaseRef, Routing
from tests.integrations.kubernetes.test_header_mirror_routes import BETA, DARK

SCHEMAS = Path(__file__).parent / "schemas"
RULE = json.loads((SCHEMAS / "gateway-api-httproute-v1-rule.json").read_text())
HTTP_ROUTE = json.loads((SCHEMAS / "istio-virtualservice-v1-http-route.json").read_text())
CASES = {
    "gateway-api": ({"kind": "gateway-api", "route": "api"}, "HTTPRoute", "rules", RULE),
    "istio": ({"kind": "istio", "virtual_service": "api"}, "VirtualService", "http", HTTP_ROUTE),
}


def routings(kind: str) -> list[Routing]:
    pair = {"stable_slot": "blue", "canary_slot": "green"}
    cookie = {"cookie": "canary"} if kind == "istio" else {}
    return [
        Routing({"blue": 100}),
        Routing({"blue": 95, "green": 5}, header="X-Canary", **cookie, **pair),
        Routing({"blue": 80, "green": 20}, header_routes=(BETA,), **pair),
        Routing({"blue": 80, "green": 20}, mirror_routes=(DARK,), **pair),
        Routing(
            {"blue": 50, "green": 50},
            preview_slot="green",
            header_routes=(BETA,),
            mirror_routes=({"name": "all", "percentage": 100, "match": []},),
            **pair,
        ),
        Routing({"blue": 100, "green": 0}, **pair),
        Routing(None),
    ]


@pytest.mark.parametrize("kind", sorted(CASES))
def test_every_route_written_is_valid_against_the_crd_schema(cluster, make_target, kind):
    router, object_kind, key, schema = CASES[kind]
    target = make_target(router)
    target.ensure_slot("blue", ReleaseRef("1.0.0", {"image": "reg/api:1"}), 2)
    target.ensure_slot("green", ReleaseRef("2.0.0", {"image": "reg/api:2"}), 1)
    before = len(cluster.writes)
    for routing in routings(kind):
        target.set_routing(routing)
    written = [
        body
        for _, method, _, body in cluster.writes[before:]
        if method in ("POST", "PUT") and body.get("kind") == object_kind
    ]
    assert len(written) == len(routings(kind))  # each routing was written, and checked
    validator = jsonschema.Draft7Validator(schema)
    checked = 0
    for body in written:
        for route in body["spec"][key]:
            errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(route)]
            assert not errors, (route, errors)
            checked += 1
    assert checked >= 12


def test_the_schemas_refuse_what_the_crds_refuse():
    """Not vacuous: the mistakes a router could make fail."""
    rule = jsonschema.Draft7Validator(RULE)
    assert not rule.is_valid({"backendRefs": [{"name": "api-blue", "port": 80, "weight": -1}]})
    assert not rule.is_valid({"backendRefs": [{"name": "api-blue"}]})  # a Service needs a port
    assert not rule.is_valid(
        {"matches": [{"headers": [{"type": "Prefix", "name": "x", "value": "y"}]}]}
    )
    assert not rule.is_valid({"matches": [{"method": "get"}]})
    assert not rule.is_valid({"matches": [{"path": {"type": "PathPrefix", "value": "api"}}]})
    mirror = {"backendRef": {"name": "api-green", "port": 80}, "percent": 101}
    assert not rule.is_valid({"filters": [{"type": "RequestMirror", "requestMirror": mirror}]})
    assert not rule.is_valid({"filters": [{"type": "RequestMirror"}]})
    assert not rule.is_valid({"timeout": "1s"})  # unknown (or unchecked) fields fail
    http = jsonschema.Draft7Validator(HTTP_ROUTE)
    assert not http.is_valid({"route": [{"weight": 10}]})  # a destination is required
    assert not http.is_valid({"match": [{"uri": {"exact": "/", "prefix": "/"}}]})
    assert not http.is_valid({"mirror": {"subset": "green"}})
    assert not http.is_valid({"mirrorPercentage": {"value": "25"}})
