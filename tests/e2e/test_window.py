"""End to end: the rollback window with a real fleet agent (its router in front of the instances)
and a real Celery worker, a client sending steady traffic through the router. Inside the window a
rollback of a succeeded deployment is a switch back to the warm previous release -- not one
request fails, no instance is started -- and the newer slot is retired; when the window is over
(its time, or ended early through the API) the warm slot is retired and a rollback redeploys."""

from __future__ import annotations

import time

import pytest
from django.utils import timezone

from integrations.local.target import LocalTarget
from integrations.local.traffic import Traffic, failures, settled_after
from releases.models import Deployment
from releases.reconcile import tasks

from .test_bluegreen import FAST_HEALTH, deploy, first_release, setup_service
from .test_rolling_deploy import wait_done

pytestmark = pytest.mark.e2e

CANARY = {
    "kind": "canary",
    "stable_replicas": 2,
    "steps": [{"set_weight": 50}, {"pause": {"duration": "500ms"}}, {"set_weight": 100}],
    "health": FAST_HEALTH,
}
ROLLING = {"kind": "rolling", "replicas": 2, "batch_size": 1, "health": FAST_HEALTH}


def fleet_target(stack) -> LocalTarget:
    return LocalTarget("shop.dev", {}, fleet_url=stack.agent.url, token=stack.agent.token)


def window_of(api) -> dict:
    return api.call("get", "/services/shop/targets/dev")["rollback_window"]


def wait_warm(stack, api, replicas=2) -> dict:
    def warm():
        w = window_of(api)
        slot = (fleet_target(stack).status().slots.get(w["slot"] or "")) if w["open"] else None
        return w if slot is not None and slot.ready >= replicas else None

    return stack.wait_for(warm, timeout=30, interval=0.1, what="the previous release warm")


def wait_retired(stack, api, slot: str) -> None:
    def retired():
        s = fleet_target(stack).status().slots.get(slot)
        return (s is None or s.desired == 0) and not window_of(api)["open"]

    stack.wait_for(retired, timeout=30, interval=0.1, what=f"slot {slot} retired")


def rollback_under_traffic(stack, api, endpoint, deployment_id):
    with Traffic(endpoint, rate=100, threads=4) as traffic:
        time.sleep(0.5)
        called = time.monotonic()
        back = api.call("post", f"/deployments/{deployment_id}/rollback", {"reason": "e2e"})
        returned = time.monotonic()
        assert wait_done(stack, api, back["id"])["state"] == "succeeded"
        time.sleep(0.5)
    return back, traffic.samples, called, returned


def test_a_rollback_inside_the_window_switches_back_without_failing_a_request(stack):
    api = setup_service(rollback_window=300)
    endpoint = first_release(stack, api)
    second = deploy(api, "2.0.0", CANARY)
    assert wait_done(stack, api, second["id"])["state"] == "succeeded"
    window = wait_warm(stack, api)
    assert window["version"] == "1.0.0" and window["instances"] == 2
    assert window["deployment"] == second["id"] and "switch back" in window["summary"]
    warm_slot = window["slot"]
    before = sorted(i.id for i in fleet_target(stack).status().slots[warm_slot].instances)

    back, samples, called, returned = rollback_under_traffic(stack, api, endpoint, second["id"])

    assert failures(samples) == [], f"{len(failures(samples))} of {len(samples)} requests failed"
    assert back["rollback_of"] == second["id"] and back["strategy"]["kind"] == "blue_green"
    status = fleet_target(stack).status()
    assert sorted(i.id for i in status.slots[warm_slot].instances) == before  # none restarted
    newer = status.slots.get(back["slots"]["stable"])
    assert newer is None or newer.desired == 0  # the newer slot retired
    settle = settled_after(samples, returned, "1.0.0")
    assert settle is not None, "requests sent after the rollback were not all answered by 1.0.0"
    view = api.call("get", "/services/shop/targets/dev")
    assert view["stable_version"] == "1.0.0" and not view["rollback_window"]["open"]
    print(
        f"\n[e2e figures] rollback inside the window (switch back): requests={len(samples)} "
        f"failed={len(failures(samples))} rollback_call={1000 * (returned - called):.0f}ms "
        f"all_new_requests_on_old_version_after={1000 * settle:.0f}ms"
    )


def test_when_the_window_is_over_the_slot_is_retired_and_a_rollback_redeploys(stack):
    api = setup_service(rollback_window=3)
    endpoint = first_release(stack, api)
    second = deploy(api, "2.0.0", ROLLING)
    assert wait_done(stack, api, second["id"])["state"] == "succeeded"
    warm_slot = second["slots"]["stable"]  # 1.0.0's slot, started again behind a 0% route
    stack.wait_for(
        lambda: (s := fleet_target(stack).status().slots.get(warm_slot)) and s.ready >= 2,
        timeout=30,
        what="the previous release warm",
    )
    until = Deployment.objects.get(pk=second["id"]).window_until
    time.sleep(max(0.0, (until - timezone.now()).total_seconds()) + 0.2)  # the window passes
    tasks.sweep()  # what beat runs every few seconds: the worker retires the warm slot
    wait_retired(stack, api, warm_slot)
    assert "redeploys" in window_of(api)["summary"]

    back, samples, _, returned = rollback_under_traffic(stack, api, endpoint, second["id"])

    assert failures(samples) == [], f"{len(failures(samples))} of {len(samples)} requests failed"
    assert back["strategy"]["kind"] == "rolling"  # a redeploy (a switch back is blue-green)
    assert settled_after(samples, returned, "1.0.0") is not None


def test_the_window_ended_early_through_the_api_retires_the_warm_slot(stack):
    api = setup_service(rollback_window=300)
    first_release(stack, api)
    second = deploy(api, "2.0.0", CANARY)
    assert wait_done(stack, api, second["id"])["state"] == "succeeded"
    window = wait_warm(stack, api)
    ended = api.call("post", f"/deployments/{second['id']}/end-window", {"reason": "cost"})
    assert ended["id"] == second["id"]
    wait_retired(stack, api, window["slot"])
    again = api.call("post", f"/deployments/{second['id']}/end-window", None, expect=(409,))
    assert again["code"] == "conflict"
    events = api.call("get", f"/deployments/{second['id']}/events")["items"]
    assert any("ended the rollback window early" in e["message"] for e in events)
    assert any("retired" in e["message"] for e in events if e["kind"] == "window")
