"""Every Deployment, Service and Ingress the provider writes is valid against the real Kubernetes
1.37 OpenAPI schemas (``kubernetes-validate``, strict: unknown fields fail). The objects are
those the official client sent over HTTP to the loopback fake API (tests/kubernetes/fake_api;
no kube-apiserver can run here), collected from its record of writes."""

from __future__ import annotations

import kubernetes_validate
import pytest

from integrations.base import ReleaseRef, Routing

ROUTERS = [
    {"kind": "service-selector"},
    {"kind": "gateway-api", "route": "api"},
    {"kind": "ingress-nginx", "ingress": "api"},
]


def drive(target, router_kind):
    one = ReleaseRef("1.0.0", {"image": "reg/api:1", "env": {"A": "1"}, "args": ["--serve"]})
    two = ReleaseRef("2.0.0", {"image": "reg/api:2"})
    target.ensure_slot("blue", one, 2)
    target.ensure_slot("green", two, 1)
    if router_kind == "service-selector":
        target.set_routing(Routing({"blue": 100, "green": 0}, preview_slot="green"))
        target.set_routing(Routing({"blue": 0, "green": 100}))
    else:
        rules = {"header": "X-Canary"}
        if router_kind == "ingress-nginx":
            rules["cookie"] = "canary"
        split = Routing({"blue": 90, "green": 10}, stable_slot="blue", canary_slot="green", **rules)
        target.set_routing(split)
        target.set_routing(Routing({"blue": 100, "green": 0}, stable_slot="blue"))
        target.set_routing(Routing(None))
    target.ensure_slot("green", two, 3)
    target.remove_slot("blue")


@pytest.mark.parametrize("router", ROUTERS, ids=lambda r: r["kind"])
def test_every_object_written_is_valid_against_the_kubernetes_schemas(cluster, make_target, router):
    before = len(cluster.writes)
    drive(make_target(router), router["kind"])
    written = [body for _, method, _, body in cluster.writes[before:] if method in ("POST", "PUT")]
    core = [b for b in written if b.get("kind") in ("Deployment", "Service", "Ingress")]
    assert {b["kind"] for b in core} >= {"Deployment", "Service"}
    for body in core:
        kubernetes_validate.validate(body, "1.37.0", strict=True)
