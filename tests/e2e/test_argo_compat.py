"""End to end on the local fleet, with a real fleet agent and a real Celery worker: an Argo
Rollouts Rollout manifest pasted as it is into the API runs: its setHeaderRoute sends the
matching requests to the new release at weight 0 (and no others), its setMirrorRoute copies the
matching requests to the new release while users are answered by the old one, until the
promotion removes the routes."""

from __future__ import annotations

import httpx
import pytest

from .test_bluegreen import deploy, setup_service
from .test_canary import first_release, wait_state
from .test_rolling_deploy import wait_done

pytestmark = pytest.mark.e2e

ROLLOUT = {
    "apiVersion": "argoproj.io/v1alpha1",
    "kind": "Rollout",
    "metadata": {"name": "shop"},
    "spec": {
        "replicas": 2,
        "progressDeadlineSeconds": 40,
        "selector": {"matchLabels": {"app": "shop"}},
        "template": {"metadata": {"labels": {"app": "shop"}}, "spec": {"containers": []}},
        "strategy": {
            "canary": {
                "canaryService": "shop-canary",
                "stableService": "shop-stable",
                "trafficRouting": {"managedRoutes": [{"name": "beta"}], "istio": {}},
                "steps": [
                    {
                        "setCanaryScale": {"replicas": 1},
                        "setHeaderRoute": {
                            "name": "beta",
                            "match": [{"headerName": "X-Beta", "headerValue": {"exact": "yes"}}],
                        },
                    },
                    {"pause": {}},
                ],
            }
        },
    },
}


def versions(endpoint: str, headers: dict[str, str], count: int = 20) -> set[str]:
    with httpx.Client(timeout=5) as client:
        return {
            client.get(endpoint, headers=headers).headers["x-switchyard-version"]
            for _ in range(count)
        }


def test_a_pasted_rollout_with_a_header_route_sends_only_matching_requests_to_the_canary(stack):
    api = setup_service()
    endpoint = first_release(stack, api)
    second = deploy(api, "2.0.0", ROLLOUT)
    assert second["strategy"]["steps"][1]["set_header_route"]["name"] == "beta"

    wait_state(stack, api, second["id"], "paused")  # pause {}: waits for a person
    paused = api.call("get", f"/deployments/{second['id']}")
    assert paused["weights"] == {"stable": 100, "canary": 0}
    assert versions(endpoint, {"X-Beta": "yes"}) == {"2.0.0"}
    assert versions(endpoint, {"X-Beta": "no"}) == {"1.0.0"}
    assert versions(endpoint, {}) == {"1.0.0"}

    api.call("post", f"/deployments/{second['id']}/promote")
    done = wait_done(stack, api, second["id"])
    assert done["state"] == "succeeded", done
    assert versions(endpoint, {}) == {"2.0.0"}
    routing = api.call("get", "/services/shop/targets/dev").get("routing") or {}
    assert not routing.get("header_routes")  # the promotion removed the route


def canary_requests(stack, api) -> int:
    """Requests the new release's slot has answered (mirrored copies included)."""
    key = "shop.dev"
    with httpx.Client(timeout=5, headers={"Authorization": f"Bearer {stack.agent.token}"}) as c:
        metrics = c.get(f"{stack.agent.url}/metrics.json").json()["targets"][key]["slots"]
        status = c.get(f"{stack.agent.url}/targets/{key}").json()
    canary = status["routing"]["canary_slot"]
    return sum((metrics.get(canary) or {}).get("requests", {}).values())


def test_a_pasted_rollout_with_a_mirror_route_copies_posts_to_the_canary_unseen(stack):
    api = setup_service()
    endpoint = first_release(stack, api)
    mirror = {
        "name": "posts",
        "percentage": 100,
        "match": [{"method": {"exact": "POST"}, "path": {"prefix": "/color"}}],
    }
    manifest = {
        **ROLLOUT,
        "spec": {
            **ROLLOUT["spec"],
            "strategy": {
                "canary": {
                    "steps": [
                        {"setCanaryScale": {"replicas": 1}, "setMirrorRoute": mirror},
                        {"pause": {}},
                    ]
                }
            },
        },
    }
    second = deploy(api, "2.0.0", manifest)
    wait_state(stack, api, second["id"], "paused")
    before = canary_requests(stack, api)
    with httpx.Client(timeout=5) as client:
        answered = {
            client.post(endpoint + "/color", content=b"red").headers["x-switchyard-version"]
            for _ in range(20)
        }
        fetched = {client.get(endpoint).headers["x-switchyard-version"] for _ in range(10)}
    assert answered == {"1.0.0"} and fetched == {"1.0.0"}  # users never see the copy's answer
    stack.wait_for(
        lambda: canary_requests(stack, api) - before == 20, timeout=20, what="20 mirrored copies"
    )

    api.call("post", f"/deployments/{second['id']}/promote")
    assert wait_done(stack, api, second["id"])["state"] == "succeeded"
    routing = api.call("get", "/services/shop/targets/dev").get("routing") or {}
    assert not routing.get("mirror_routes")
