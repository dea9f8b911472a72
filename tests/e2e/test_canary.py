"""End to end: canary ladders with a real fleet agent and a real Celery worker while a client
sends steady traffic: 10 -> 50 -> 100 with pauses and a promotion, header targeting, an abort
mid-ladder (the canary kept for inspection until the sweep's cleanup), a retry and a promote
full. Not one request may fail."""

from __future__ import annotations

import time
from datetime import datetime

import httpx
import pytest
from django.utils import timezone

from integrations.local.target import LocalTarget
from integrations.local.traffic import Traffic, failures, settled_after
from releases import actions
from releases.models import Deployment
from releases.reconcile import tasks
from tests import factories

from .test_bluegreen import deploy, setup_service, wait_weights
from .test_rolling_deploy import instance_versions, wait_done

pytestmark = pytest.mark.e2e

FAST_HEALTH = {"path": "/health", "interval": "100ms", "healthy_threshold": 2}


def canary(*steps, **extra) -> dict:
    return {
        "kind": "canary",
        "steps": list(steps),
        "stable_replicas": 2,
        "progress_deadline": "40s",
        "health": FAST_HEALTH,
        "route": {"header": "X-Canary"},
        **extra,
    }


def first_release(stack, api) -> str:
    rolling = {"kind": "rolling", "replicas": 2, "batch_size": 2, "health": FAST_HEALTH}
    first = deploy(api, "1.0.0", rolling)
    assert wait_done(stack, api, first["id"])["state"] == "succeeded"
    return api.call("get", "/services/shop/targets/dev")["endpoint"]


def wait_state(stack, api, deployment_id, state):
    def seen():
        return api.call("get", f"/deployments/{deployment_id}")["state"] == state

    stack.wait_for(seen, timeout=40, interval=0.05, what=f"deployment {deployment_id} {state}")


def share(samples, version) -> float:
    return sum(1 for s in samples if s.version == version) / max(1, len(samples))


def step_starts(api, deployment_id) -> dict[int, datetime]:
    """When each step started, from the deployment's time line (``step`` events)."""
    started, after = {}, 0
    while after is not None:
        page = api.call("get", f"/deployments/{deployment_id}/events?after={after}")
        for event in page["items"]:
            if event["kind"] == "step" and "started" in event["message"]:
                started[event["data"]["step_index"]] = datetime.fromisoformat(event["created_at"])
        after = page["next"]
    return started


def slots(stack, key="shop.dev"):
    target = LocalTarget(key, {}, fleet_url=stack.agent.url, token=stack.agent.token)
    return target.status().slots


def test_a_canary_climbs_10_50_100_with_pauses_and_header_targeting_then_is_promoted(stack):
    api = setup_service()
    endpoint = first_release(stack, api)
    ladder = canary(
        {"set_weight": 10},
        {"pause": {"duration": "2s"}},
        {"set_weight": 50},
        {"pause": {}},
        {"set_weight": 100},
    )
    with Traffic(endpoint, rate=150, threads=4) as traffic:
        second = deploy(api, "2.0.0", ladder)
        at_10 = wait_weights(stack, api, second["id"], 10)
        with httpx.Client(timeout=5) as client:  # dogfooding: the header wins over the weight
            always = {
                client.get(endpoint, headers={"X-Canary": "always"}).headers["x-switchyard-version"]
                for _ in range(10)
            }
            never = {
                client.get(endpoint, headers={"X-Canary": "never"}).headers["x-switchyard-version"]
                for _ in range(10)
            }
        assert (always, never) == ({"2.0.0"}, {"1.0.0"})
        at_50 = wait_weights(stack, api, second["id"], 50)
        wait_state(stack, api, second["id"], "paused")  # pause {}: waits for a person
        time.sleep(1.5)
        paused = api.call("get", f"/deployments/{second['id']}")
        assert paused["weights"] == {"stable": 50, "canary": 50}
        api.call("post", f"/deployments/{second['id']}/promote")
        done = wait_done(stack, api, second["id"])
        time.sleep(0.3)
    samples = traffic.samples

    assert done["state"] == "succeeded", done
    assert failures(samples) == [], f"{len(failures(samples))} of {len(samples)} requests failed"
    # the timed pause lasted: measured on the server's clock, from the pause step's start to the
    # next step's (the client's two sightings can be a poll apart either way)
    started = step_starts(api, second["id"])
    assert (started[2] - started[1]).total_seconds() >= 2.0, started
    during_10 = [s for s in samples if at_10 + 0.2 <= s.started < at_50 - 0.5]
    during_50 = [s for s in samples if at_50 + 0.2 <= s.started < at_50 + 1.7]
    assert 0.0 < share(during_10, "2.0.0") < 0.3, share(during_10, "2.0.0")
    assert 0.3 < share(during_50, "2.0.0") < 0.7, share(during_50, "2.0.0")
    assert instance_versions(stack, "shop.dev") == ["2.0.0"] * 2
    assert settled_after(samples, at_50 + 1.7, "2.0.0") is not None


def test_an_abort_mid_ladder_puts_every_request_back_at_once_then_retry_and_promote_full(stack):
    api = setup_service()
    endpoint = first_release(stack, api)
    ladder = canary(
        {"set_weight": 10},
        {"pause": {"duration": "1s"}},
        {"set_weight": 50},
        {"pause": {}},
        {"set_weight": 80},
        {"pause": {}},
    )

    with Traffic(endpoint, rate=150, threads=4) as traffic:
        second = deploy(api, "2.0.0", ladder)
        wait_weights(stack, api, second["id"], 50)
        time.sleep(1.0)
        called = time.monotonic()
        api.call("post", f"/deployments/{second['id']}/abort", {"reason": "e2e"})
        returned = time.monotonic()
        aborted = wait_done(stack, api, second["id"])
        time.sleep(1.0)
        abort_samples = traffic.snapshot()

        # the canary is kept for inspection: still running, taking no traffic
        d = Deployment.objects.get(pk=second["id"])
        assert slots(stack)[d.canary_slot].ready == 1
        assert d.cleanup_at is not None

        # retry: the same release and spec from the start; promote full skips the ladder
        retried = actions.retry(factories.api_actor(), second["id"])
        wait_weights(stack, api, retried.pk, 10)
        api.call("post", f"/deployments/{retried.pk}/promote", {"full": True})
        done = wait_done(stack, api, retried.pk)
        time.sleep(0.3)
    samples = traffic.samples

    assert aborted["state"] == "aborted", aborted
    assert done["state"] == "succeeded", done
    assert failures(samples) == [], f"{len(failures(samples))} of {len(samples)} requests failed"
    settle = settled_after(abort_samples, returned, "1.0.0")
    assert settle is not None, "requests sent after the abort were not all answered by 1.0.0"
    events = api.call("get", f"/deployments/{retried.pk}/events")["items"]
    assert any(e["message"].startswith("promoted in full") for e in events)
    assert not any("80%" in e["message"] for e in events if e["kind"] == "weights")
    assert instance_versions(stack, "shop.dev") == ["2.0.0"] * 2
    print(
        f"\n[e2e figures] canary abort: requests={len(abort_samples)} "
        f"failed={len(failures(abort_samples))} abort_call={1000 * (returned - called):.0f}ms "
        f"all_new_requests_on_old_version_after={1000 * settle:.0f}ms"
    )


def test_the_sweep_scales_the_kept_canary_down_once_it_is_due(stack):
    api = setup_service()
    endpoint = first_release(stack, api)
    with Traffic(endpoint, rate=50, threads=2) as traffic:
        second = deploy(api, "2.0.0", canary({"set_weight": 50}, {"pause": {}}))
        wait_state(stack, api, second["id"], "paused")
        api.call("post", f"/deployments/{second['id']}/abort")
        assert wait_done(stack, api, second["id"])["state"] == "aborted"
        d = Deployment.objects.get(pk=second["id"])
        assert slots(stack)[d.canary_slot].ready == 1
        tasks.sweep()  # not due yet: nothing happens
        time.sleep(0.5)
        assert slots(stack)[d.canary_slot].ready == 1
        Deployment.objects.filter(pk=d.pk).update(cleanup_at=timezone.now())
        tasks.sweep()  # the worker scales it down
        stack.wait_for(
            lambda: d.canary_slot not in slots(stack),
            timeout=20,
            what="the kept canary slot to go",
        )
    assert failures(traffic.samples) == []
    events = api.call("get", f"/deployments/{second['id']}/events")["items"]
    assert any(e["kind"] == "cleanup" for e in events)
