"""End to end: CI creates releases through the API, a real Celery worker rolls them out in batches
onto real processes behind a real router while a client sends traffic, then rolls back."""

from __future__ import annotations

import json
import time

import pytest
from django.test import Client

from integrations.local.target import LocalTarget
from integrations.local.traffic import Traffic, failures, settled_after
from releases.governance.tokens import create_token
from releases.models import Target
from tests import factories

pytestmark = pytest.mark.e2e

TERMINAL = {"succeeded", "failed", "rolled_back", "aborted", "rejected"}
FAST_HEALTH = {"path": "/health", "interval": "200ms", "healthy_threshold": 2}
ROLLING = {
    "kind": "rolling",
    "replicas": 4,
    "batch_size": 1,
    "max_surge": 1,
    "max_unavailable": 0,
    "min_ready": "300ms",
    "progress_deadline": "60s",
    "health": FAST_HEALTH,
}


class Api:
    def __init__(self, token: str):
        self.client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")

    def call(self, method: str, path: str, body=None, expect=(200, 201, 202)):
        response = getattr(self.client, method)(
            f"/api/v1{path}",
            data=json.dumps(body) if body is not None else None,
            content_type="application/json",
        )
        assert response.status_code in expect, (response.status_code, response.content)
        return response.json()


def wait_done(stack, api, deployment_id, timeout=90):
    def done():
        d = api.call("get", f"/deployments/{deployment_id}")
        return d if d["state"] in TERMINAL else None

    return stack.wait_for(done, timeout=timeout, interval=0.2, what=f"deployment {deployment_id}")


def instance_versions(stack, key):
    target = LocalTarget(key, {}, fleet_url=stack.agent.url, token=stack.agent.token)
    status = target.status()
    return sorted(
        i.version for slot in status.slots.values() for i in slot.instances if i.state == "ready"
    )


def test_it_rolls_out_in_batches_without_failing_a_request_and_rolls_back(stack):
    admin = factories.make_user("ci-admin")
    _, raw = create_token(admin, "ci")
    api = Api(raw)
    api.call("post", "/services", {"slug": "shop", "name": "Shop"})
    # the rollback window off: this is about the rollout (tests/e2e/test_window.py: the window)
    api.call(
        "post", "/environments", {"slug": "dev", "name": "Dev", "order": 1, "rollback_window": 0}
    )
    api.call("put", "/services/shop/targets/dev", {"provider": "local", "config": {}})
    for version in ("1.0.0", "2.0.0"):
        api.call(
            "post",
            "/services/shop/releases",
            {"version": version, "artifact": {"sample": {"latency_ms": 5}}, "commit": "abc"},
        )

    first = api.call(
        "post",
        "/deployments",
        {"service": "shop", "environment": "dev", "version": "1.0.0", "strategy": ROLLING},
    )
    assert wait_done(stack, api, first["id"])["state"] == "succeeded"
    endpoint = api.call("get", "/services/shop/targets/dev")["endpoint"]
    assert endpoint.startswith("http://127.0.0.1:")
    assert instance_versions(stack, "shop.dev") == ["1.0.0"] * 4

    with Traffic(endpoint, rate=100, threads=4) as traffic:
        time.sleep(0.5)
        second = api.call(
            "post",
            "/deployments",
            {"service": "shop", "environment": "dev", "version": "2.0.0", "strategy": ROLLING},
        )
        # batches: the new release grows one instance at a time, never all at once
        seen_mixed = stack.wait_for(
            lambda: len(set(instance_versions(stack, "shop.dev"))) == 2,
            timeout=30,
            what="both versions serving during the rollout",
        )
        done = wait_done(stack, api, second["id"])
        assert done["state"] == "succeeded", done
        assert instance_versions(stack, "shop.dev") == ["2.0.0"] * 4
        time.sleep(0.5)

        rollback_started = time.monotonic()
        back = api.call("post", f"/deployments/{second['id']}/rollback", {"reason": "e2e"})
        returned = time.monotonic()
        assert back["id"] != second["id"] and back["target_version"] == "1.0.0"
        assert wait_done(stack, api, back["id"])["state"] == "succeeded"
        time.sleep(0.5)
    samples = traffic.samples

    assert seen_mixed
    assert instance_versions(stack, "shop.dev") == ["1.0.0"] * 4
    assert Target.objects.get(service__slug="shop").stable_release.version == "1.0.0"
    versions = {s.version for s in samples}
    assert versions == {"1.0.0", "2.0.0"}
    assert failures(samples) == [], f"{len(failures(samples))} of {len(samples)} requests failed"
    settle = settled_after(samples, returned, "1.0.0")
    assert settle is not None, "requests sent at the end were not all answered by 1.0.0"
    events = api.call("get", f"/deployments/{second['id']}/events")["items"]
    assert any("batch" in e["message"] for e in events)
    print(
        f"\n[e2e figures] requests={len(samples)} failed={len(failures(samples))} "
        f"rollback_call={1000 * (returned - rollback_started):.0f}ms "
        f"all_new_requests_on_old_version_after={1000 * settle:.0f}ms"
    )
