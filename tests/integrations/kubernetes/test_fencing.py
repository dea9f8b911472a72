"""Fencing on a cluster: a stale worker's routing or scale write never lands after a newer
tick's. Runs against the loopback fake Kubernetes API (fake_api.py: no kube-apiserver can run
here), through the official client over real HTTP; the fake checks ``resourceVersion`` on every
replace as the API server does."""

from __future__ import annotations

import pytest

from integrations.base import IntegrationError, ReleaseRef, Routing, StaleFence
from integrations.kubernetes.fencing import FENCE_ANNOTATION

V1 = ReleaseRef("1.0.0", {"image": "reg/api:1"})
V2 = ReleaseRef("2.0.0", {"image": "reg/api:2"})
ROUTERS = {
    "gateway-api": (
        {"kind": "gateway-api", "route": "api"},
        "gateway.networking.k8s.io",
        "httproutes",
        "api",
    ),
    "istio": (
        {"kind": "istio", "virtual_service": "api"},
        "networking.istio.io",
        "virtualservices",
        "api",
    ),
    "ingress-nginx": (
        {"kind": "ingress-nginx", "ingress": "api"},
        "networking.k8s.io",
        "ingresses",
        "api-canary",
    ),
    "service-selector": ({"kind": "service-selector"}, "", "services", "api"),
}
ABORT = Routing({"blue": 100, "green": 0}, stable_slot="blue", canary_slot="green")
HALF = Routing({"blue": 50, "green": 50}, stable_slot="blue", canary_slot="green")


def workers(make_target, router):
    """The same target as a stale worker (claim generation 2) and a newer one (3) see it."""
    stale, newer = make_target(router), make_target(router)
    stale.fence, newer.fence = (7, 2), (7, 3)
    return stale, newer


def weighted(router):
    return router["kind"] != "service-selector"


@pytest.mark.parametrize("kind", sorted(ROUTERS))
def test_a_stale_routing_write_is_refused_after_a_newer_one(cluster, make_target, kind):
    router, group, plural, name = ROUTERS[kind]
    stale, newer = workers(make_target, router)
    newer.ensure_slot("blue", V1, 2)
    newer.ensure_slot("green", V2, 1)
    split = (
        HALF if weighted(router) else Routing({"blue": 0, "green": 100}, "blue", "blue", "green")
    )
    stale.set_routing(split)  # the stale worker acted first, while it still held the lease
    newer.set_routing(ABORT)  # the newer tick writes 100% stable
    obj = cluster.get(group, plural, name)
    assert obj["metadata"]["annotations"][FENCE_ANNOTATION] == "7:3"
    before = obj["metadata"]["resourceVersion"]

    with pytest.raises(StaleFence) as refused:
        stale.set_routing(split)  # its late call, after the newer one
    assert "7:2 is older than 7:3" in refused.value.message
    assert cluster.get(group, plural, name)["metadata"]["resourceVersion"] == before
    assert newer.status().weights == {"blue": 100, "green": 0}


def test_a_stale_scale_is_refused_and_the_newer_replicas_stay(cluster, make_target):
    stale, newer = workers(make_target, ROUTERS["gateway-api"][0])
    stale.ensure_slot("green", V2, 1)
    newer.ensure_slot("green", V2, 3)
    with pytest.raises(StaleFence):
        stale.ensure_slot("green", V2, 1)
    with pytest.raises(StaleFence):
        stale.remove_slot("green")
    deployment = cluster.get("apps", "deployments", "api-green")
    assert deployment["spec"]["replicas"] == 3
    assert deployment["metadata"]["annotations"][FENCE_ANNOTATION] == "7:3"

    newer.remove_slot("green")  # the owner itself, and any later tick, still may
    assert cluster.get("apps", "deployments", "api-green")["spec"]["replicas"] == 0


def test_a_newer_deployment_fences_out_the_previous_deployments_ticks(cluster, make_target):
    router = ROUTERS["istio"][0]
    old, new = make_target(router), make_target(router)
    old.fence, new.fence = (7, 40), (8, 1)  # a newer deployment of the target: a larger id
    new.ensure_slot("blue", V1, 2)
    new.ensure_slot("green", V2, 1)
    new.set_routing(ABORT)
    with pytest.raises(StaleFence):
        old.set_routing(HALF)


def test_a_stale_write_racing_a_newer_one_is_refused_by_resource_version(cluster, make_target):
    """The check and the write are one conditional write: the stale worker reads the route, the
    newer tick writes meanwhile, and the stale replace (carrying the resourceVersion it read)
    is refused by the API server (409), so the newer routing stays."""
    router, group, plural, name = ROUTERS["gateway-api"]
    stale, newer = workers(make_target, router)
    newer.ensure_slot("blue", V1, 2)
    newer.ensure_slot("green", V2, 1)
    stale.set_routing(Routing({"blue": 90, "green": 10}, stable_slot="blue", canary_slot="green"))
    call = stale.cluster.call

    def between_read_and_write(what, method, *args, **kwargs):
        if what.startswith("update HTTPRoute"):
            newer.set_routing(ABORT)  # lands after the stale worker's read, before its write
        return call(what, method, *args, **kwargs)

    stale.cluster.call = between_read_and_write
    with pytest.raises(IntegrationError) as refused:
        stale.set_routing(HALF)
    assert "conflict (409)" in refused.value.message
    assert not refused.value.permanent
    assert newer.status().weights == {"blue": 100, "green": 0}
    assert cluster.get(group, plural, name)["metadata"]["annotations"][FENCE_ANNOTATION] == "7:3"
