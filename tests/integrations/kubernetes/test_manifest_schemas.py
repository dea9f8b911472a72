"""Every Deployment, Service and Ingress the provider writes is valid against the real Kubernetes
1.37 OpenAPI schemas (``kubernetes-validate``, strict: unknown fields fail). The objects are
those the official client sent over HTTP to the loopback fake API (fake_api.py here;
no kube-apiserver can run here), collected from its record of writes."""

from __future__ import annotations

import kubernetes_validate
import pytest

from integrations.base import Arm, MetricQuery, ReleaseRef, Routing
from integrations.metrics import build_metrics
from tests.integrations.kubernetes.conftest import target_config

ROUTERS = [
    {"kind": "service-selector"},
    {"kind": "gateway-api", "route": "api"},
    {"kind": "ingress-nginx", "ingress": "api"},
    {"kind": "istio", "virtual_service": "api"},
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
        if router_kind in ("ingress-nginx", "istio"):
            rules["cookie"] = "canary"
        split = Routing({"blue": 90, "green": 10}, stable_slot="blue", canary_slot="green", **rules)
        target.set_routing(Routing({"blue": 100}))  # one slot first: istio adds a subset later
        target.set_routing(split)
        target.set_routing(Routing({"blue": 100, "green": 0}, stable_slot="blue"))
        target.set_routing(Routing(None))
    target.ensure_slot("green", two, 3)
    target.remove_slot("blue")


def run_jobs():
    """A job metric's measurements: one Job that succeeds, one that outlives its timeout."""
    for command, timeout in (("true", 60), ("sleep 60", 0.2)):
        source = build_metrics(
            "job",
            runner="kubernetes",
            cluster=target_config(),
            image="reg/smoke:1",
            timeout=timeout,
            poll=0.02,
        )
        query = MetricQuery(command, baseline=Arm("blue"), canary=Arm("green"), target="api.dev")
        source.fetch(query, {}, 0, 1)


@pytest.mark.parametrize("router", ROUTERS, ids=lambda r: r["kind"])
def test_every_object_written_is_valid_against_the_kubernetes_schemas(cluster, make_target, router):
    before = len(cluster.writes)
    drive(make_target(router), router["kind"])
    written = [body for _, method, _, body in cluster.writes[before:] if method in ("POST", "PUT")]
    core = [b for b in written if b.get("kind") in ("Deployment", "Service", "Ingress")]
    assert {b["kind"] for b in core} >= {"Deployment", "Service"}
    for body in core:
        kubernetes_validate.validate(body, "1.37.0", strict=True)


def rbac_rules():
    import yaml
    from django.conf import settings

    docs = yaml.safe_load_all((settings.BASE_DIR / "docs" / "kubernetes-rbac.yaml").read_text())
    (role,) = [d for d in docs if d["kind"] == "Role"]
    kubernetes_validate.validate(role, "1.37.0", strict=True)
    return {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


def used(requests):
    """(API group, resource, verb) of each request the provider made."""
    verbs = {"POST": "create", "PUT": "update", "DELETE": "delete", "PATCH": "patch"}
    out = set()
    for method, path, _ in requests:
        parts = path.strip("/").split("/")
        group = "" if parts[0] == "api" else parts[1]
        rest = parts[2:] if parts[0] == "api" else parts[3:]
        resource, named = rest[2], len(rest) > 3
        verb = verbs.get(method) or ("get" if named else "list")
        out.add((group, resource, verb))
    return out


@pytest.mark.parametrize("router", ROUTERS, ids=lambda r: r["kind"])
def test_the_shipped_rbac_role_grants_exactly_what_the_provider_uses(cluster, make_target, router):
    before = len(cluster.requests)
    target = make_target(router)
    drive(target, router["kind"])
    target.status()
    assert used(cluster.calls(before)) <= rbac_rules()


def test_analysis_jobs_need_only_what_the_role_grants(cluster, kubeconfig_path, settings):
    settings.KUBERNETES_KUBECONFIG = kubeconfig_path
    run_jobs()
    assert used(cluster.calls()) == {("batch", "jobs", v) for v in ("create", "get", "delete")}
    assert used(cluster.calls()) <= rbac_rules()
    for _, method, _, body in cluster.writes:
        if method == "POST":
            kubernetes_validate.validate(body, "1.37.0", strict=True)


def test_the_role_grants_nothing_the_provider_never_uses(
    cluster, make_target, kubeconfig_path, settings
):
    settings.KUBERNETES_KUBECONFIG = kubeconfig_path
    before = len(cluster.requests)
    run_jobs()
    seen = used(cluster.calls(before))
    for router in ROUTERS:
        before = len(cluster.requests)
        target = make_target(router, key=f"api.{router['kind']}")
        drive(target, router["kind"])
        target.status()
        seen |= used(cluster.calls(before))
    assert rbac_rules() - seen == set()
