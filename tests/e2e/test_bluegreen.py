"""End to end: blue-green with a real fleet agent and a real Celery worker while a client sends
steady traffic: preview + smoke checks + automatic promotion, the atomic switch, a switch back
within the scale-down delay, a redeploy of the old release after it, and a failing smoke check
that rolls back by itself. Not one request may fail."""

from __future__ import annotations

import time

import httpx
import pytest

from integrations.local.traffic import Traffic, failures, settled_after
from releases.governance.tokens import create_token
from releases.models import Target
from tests import factories

from .test_rolling_deploy import Api, instance_versions, wait_done

pytestmark = pytest.mark.e2e

FAST_HEALTH = {"path": "/health", "interval": "100ms", "healthy_threshold": 2}


def blue_green(**extra) -> dict:
    return {
        "kind": "blue_green",
        "replicas": 2,
        "preview_replicas": 1,
        "smoke": [{"path": "/health", "status": 200}, {"path": "/", "status": 200}],
        "auto_promote": "1s",
        "scale_down_delay": "30s",
        "progress_deadline": "40s",
        "health": FAST_HEALTH,
        **extra,
    }


def setup_service(versions=("1.0.0", "2.0.0"), rollback_window=0) -> Api:
    """shop in dev with ``versions``; the rollback window is off unless asked for (these tests
    are about the rollouts themselves; tests/e2e/test_window.py is about the window)."""
    admin = factories.make_user("ci-admin")
    _, raw = create_token(admin, "ci")
    api = Api(raw)
    api.call("post", "/services", {"slug": "shop", "name": "Shop"})
    env = {"slug": "dev", "name": "Dev", "order": 1, "rollback_window": rollback_window}
    api.call("post", "/environments", env)
    api.call("put", "/services/shop/targets/dev", {"provider": "local", "config": {}})
    for version in versions:
        api.call(
            "post",
            "/services/shop/releases",
            {"version": version, "artifact": {"sample": {"latency_ms": 5}}, "commit": "abc"},
        )
    return api


def deploy(api: Api, version: str, strategy: dict) -> dict:
    body = {"service": "shop", "environment": "dev", "version": version, "strategy": strategy}
    return api.call("post", "/deployments", body)


def first_release(stack, api: Api) -> str:
    first = deploy(api, "1.0.0", blue_green(smoke=[], auto_promote=0, scale_down_delay=0))
    assert wait_done(stack, api, first["id"])["state"] == "succeeded"
    return api.call("get", "/services/shop/targets/dev")["endpoint"]


def wait_weights(stack, api: Api, deployment_id: int, canary: int) -> float:
    def seen():
        d = api.call("get", f"/deployments/{deployment_id}")
        return d["weights"].get("canary") == canary and d

    stack.wait_for(seen, timeout=40, interval=0.05, what=f"{canary}% on the new release")
    return time.monotonic()


def on_or_after(samples, since: float):
    return [s for s in samples if s.started >= since]


def test_a_blue_green_switch_is_atomic_and_a_rollback_within_the_delay_switches_back(stack):
    api = setup_service()
    endpoint = first_release(stack, api)

    with Traffic(endpoint, rate=100, threads=4) as traffic:
        time.sleep(0.3)
        second = deploy(api, "2.0.0", blue_green())
        switched = wait_weights(stack, api, second["id"], 100)
        time.sleep(1.0)
        d = api.call("get", f"/deployments/{second['id']}")
        assert d["state"] == "progressing"  # the old side is kept for the scale-down delay
        assert sorted(instance_versions(stack, "shop.dev")) == ["1.0.0"] * 2 + ["2.0.0"] * 2
        called = time.monotonic()
        back = api.call("post", f"/deployments/{second['id']}/rollback", {"reason": "e2e"})
        returned = time.monotonic()
        assert back["id"] == second["id"]  # a switch back, not a new deployment
        assert wait_done(stack, api, second["id"])["state"] == "rolled_back"
        time.sleep(0.5)
    samples = traffic.samples

    assert failures(samples) == [], f"{len(failures(samples))} of {len(samples)} requests failed"
    # the preview never took user traffic; after the switch, nothing went to the old side
    before_switch = [s for s in samples if s.finished < switched - 1.0]
    assert before_switch and {s.version for s in before_switch} == {"1.0.0"}
    between = [s for s in on_or_after(samples, switched) if s.started < called]
    assert between and {s.version for s in between} == {"2.0.0"}
    settle = settled_after(samples, returned, "1.0.0")
    assert settle is not None, "requests sent at the end were not all answered by 1.0.0"
    events = api.call("get", f"/deployments/{second['id']}/events")["items"]
    assert any(e["message"] == "smoke checks passed on the preview" for e in events)
    assert any(e["message"].startswith("promoted automatically") for e in events)
    print(
        f"\n[e2e figures] blue-green switch back: requests={len(samples)} "
        f"failed={len(failures(samples))} rollback_call={1000 * (returned - called):.0f}ms "
        f"all_new_requests_on_old_version_after={1000 * settle:.0f}ms"
    )


def test_after_the_scale_down_delay_a_rollback_redeploys_the_old_release(stack):
    api = setup_service()
    endpoint = first_release(stack, api)

    with Traffic(endpoint, rate=100, threads=4) as traffic:
        second = deploy(api, "2.0.0", blue_green(scale_down_delay="1s"))
        assert wait_done(stack, api, second["id"])["state"] == "succeeded"
        assert instance_versions(stack, "shop.dev") == ["2.0.0"] * 2
        time.sleep(0.3)
        called = time.monotonic()
        back = api.call("post", f"/deployments/{second['id']}/rollback", {"reason": "e2e"})
        returned = time.monotonic()
        assert back["id"] != second["id"] and back["target_version"] == "1.0.0"
        assert wait_done(stack, api, back["id"])["state"] == "succeeded"
        time.sleep(0.5)
    samples = traffic.samples

    assert failures(samples) == [], f"{len(failures(samples))} of {len(samples)} requests failed"
    assert instance_versions(stack, "shop.dev") == ["1.0.0"] * 2
    assert Target.objects.get(service__slug="shop").stable_release.version == "1.0.0"
    settle = settled_after(samples, returned, "1.0.0")
    assert settle is not None
    # the redeploy is a switch too: once 1.0.0 answers, 2.0.0 never does again
    first_old = min(s.started for s in on_or_after(samples, returned) if s.version == "1.0.0")
    assert {s.version for s in on_or_after(samples, first_old)} == {"1.0.0"}
    print(
        f"\n[e2e figures] blue-green redeploy of the old release: requests={len(samples)} "
        f"failed={len(failures(samples))} rollback_call={1000 * (returned - called):.0f}ms "
        f"all_new_requests_on_old_version_after={1000 * settle:.0f}ms"
    )


def test_a_failing_smoke_check_rolls_back_by_itself_and_no_user_sees_the_new_release(stack):
    api = setup_service()
    endpoint = first_release(stack, api)
    smoke = [{"path": "/", "status": 200, "body_contains": "a text 2.0.0 never says"}]

    with Traffic(endpoint, rate=100, threads=4) as traffic:
        second = deploy(api, "2.0.0", blue_green(smoke=smoke, auto_promote=0))
        done = wait_done(stack, api, second["id"])
        status = api.call("get", "/services/shop/targets/dev")
        time.sleep(0.3)
    samples = traffic.samples

    assert done["state"] == "failed", done
    events = api.call("get", f"/deployments/{second['id']}/events")["items"]
    failure = next(e["message"] for e in events if e["kind"] == "failure")
    assert failure.startswith("smoke checks failed on the preview: GET / answered 200 without")
    assert failures(samples) == []
    assert {s.version for s in samples} == {"1.0.0"}  # only the preview ever ran 2.0.0
    assert status["stable_version"] == "1.0.0"
    with httpx.Client(timeout=5) as client:
        assert client.get(endpoint).headers["x-switchyard-version"] == "1.0.0"
