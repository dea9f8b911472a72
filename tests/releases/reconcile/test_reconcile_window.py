"""The rollback window against a real fleet agent, tick by tick in this process (no worker), on
Postgres: a success keeps the previous release warm at 0% traffic; a rollback inside the window
switches back to it (no instance restarted) and retires the newer slot; outside it redeploys;
the window's end retires the warm slot; ending it early is a role-checked, audited command; a
new deployment closes it; a crash in the middle of the switch back resumes, without repeating
a step; recreate, an environment with the window off and a provider that cannot hold a second
slot have none."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from integrations import registry
from releases import actions
from releases.errors import Conflict, Forbidden
from releases.live.presenters import window_dict
from releases.models import AuditEvent, Deployment, DeploymentEvent, State
from releases.reconcile import cleanup, tick
from tests import factories
from tests.releases.reconcile import test_reconcile_switch as switch
from tests.releases.reconcile.test_reconcile_switch import (
    FAST_HEALTH,
    Recording,
    canary_spec,
    deploy,
    live,
)
from tests.ticks import tick_until

agent, fleet = switch.agent, switch.fleet  # the same real fleet agent fixtures

ROLLING = {"kind": "rolling", "replicas": 2, "batch_size": 1, "health": FAST_HEALTH}


def canary():
    return canary_spec({"set_weight": 50}, {"set_weight": 100})


def succeeded(target, version, spec):
    d = tick_until(deploy(target, version, spec), lambda d: d.state == State.SUCCEEDED)
    target.refresh_from_db()
    return d


def instance_ids(fleet, slot):
    status = fleet.status().slots.get(slot)
    return sorted(i.id for i in status.instances) if status else []


def warm(fleet, d, replicas=2):
    """Wait until the previous release's slot of ``d`` has ``replicas`` ready instances."""
    deadline = timezone.now() + timedelta(seconds=20)
    while timezone.now() < deadline:
        slot = fleet.status().slots.get(d.stable_slot)
        if slot is not None and slot.ready >= replicas:
            return slot
    raise AssertionError(f"slot {d.stable_slot} never had {replicas} ready instances")


def events_of(d, kind):
    return list(
        DeploymentEvent.objects.filter(deployment=d, kind=kind).values_list("message", flat=True)
    )


@pytest.mark.parametrize("spec", [canary(), ROLLING], ids=["canary", "rolling"])
def test_a_success_keeps_the_previous_release_warm_and_a_rollback_switches_back_to_it(
    target, fleet, monkeypatch, spec
):
    live(target)  # 1.0.0
    d = succeeded(target, "2.0.0", spec)
    assert d.window_until is not None
    left = (d.window_until - timezone.now()).total_seconds()
    assert 290 < left <= 300  # the environment's default window
    slot = warm(fleet, d)
    assert slot.version == "1.0.0"
    assert fleet.status().routing.weights == {d.stable_slot: 0, d.canary_slot: 100}
    view = window_dict(target)
    assert view["open"] and view["slot"] == d.stable_slot and view["version"] == "1.0.0"
    assert view["instances"] == 2 and view["deployment"] == d.pk
    assert any("rollback window open" in m for m in events_of(d, "window"))
    before = instance_ids(fleet, d.stable_slot)

    recording = Recording(fleet)
    monkeypatch.setattr(tick, "integration_for", lambda row: recording)
    back = actions.rollback(factories.api_actor(), d.pk)
    assert back.rollback_of_id == d.pk and back.canary_slot == d.stable_slot
    assert back.strategy["kind"] == "blue_green" and "switch back" in back.reason
    tick.tick(back.pk)  # one tick: every new request on the warm slot
    assert fleet.status().routing.weights == {d.stable_slot: 100, d.canary_slot: 0}
    back = tick_until(back, lambda b: b.state == State.SUCCEEDED, what="the switch back")
    assert instance_ids(fleet, d.stable_slot) == before  # switched to, not restarted
    assert ("ensure_slot", d.stable_slot) not in recording.calls
    assert fleet.status().slots[d.canary_slot].desired == 0  # the newer slot retired
    target.refresh_from_db()
    assert (target.stable_release.version, target.stable_slot) == ("1.0.0", d.stable_slot)
    d.refresh_from_db()
    assert d.window_until is None
    assert any("inside the rollback window" in m for m in events_of(d, "window"))
    assert back.window_until is None  # a rollback opens no window of its own
    assert not window_dict(target)["open"]


def test_outside_the_window_a_rollback_redeploys_as_before(target, fleet):
    live(target)
    d = succeeded(target, "2.0.0", ROLLING)
    warm(fleet, d)
    Deployment.objects.filter(pk=d.pk).update(window_until=timezone.now() - timedelta(seconds=1))
    assert cleanup.retire_warm_slot(d.pk)
    back = actions.rollback(factories.api_actor(), d.pk)
    assert back.strategy == actions.rollback_spec(d.strategy)  # a fast rolling redeploy
    assert back.strategy["kind"] == "rolling" and "redeploy" in back.reason
    back = tick_until(back, lambda b: b.state == State.SUCCEEDED, what="the redeploy")
    assert fleet.status().slots[back.canary_slot].version == "1.0.0"


def test_the_end_of_the_window_retires_the_warm_slot(target, fleet):
    live(target)
    d = succeeded(target, "2.0.0", canary())
    warm(fleet, d)
    assert d.pk not in cleanup.due_windows()
    assert not cleanup.retire_warm_slot(d.pk)  # not over yet: nothing happens
    assert fleet.status().slots[d.stable_slot].desired == 2
    Deployment.objects.filter(pk=d.pk).update(window_until=timezone.now() - timedelta(seconds=1))
    assert cleanup.due_windows() == [d.pk]
    assert cleanup.retire_warm_slot(d.pk)
    slot = fleet.status().slots.get(d.stable_slot)
    assert slot is None or slot.desired == 0
    d.refresh_from_db()
    target.refresh_from_db()
    assert d.window_until is None and cleanup.due_windows() == []
    assert d.stable_slot not in target.observed or target.observed[d.stable_slot]["desired"] == 0
    assert any("warm slot" in m and "retired" in m for m in events_of(d, "window"))
    assert not window_dict(target)["open"]
    assert not cleanup.retire_warm_slot(d.pk)  # twice is harmless


def test_the_window_can_be_ended_early_by_a_deployer_and_it_is_audited(target, fleet):
    live(target)
    d = succeeded(target, "2.0.0", canary())
    warm(fleet, d)
    viewer = factories.make_persona("viewer", target.environment)
    with pytest.raises(Forbidden):
        actions.end_window(factories.api_actor(viewer), d.pk)
    deployer = factories.make_persona("deployer", target.environment)
    actions.end_window(factories.api_actor(deployer), d.pk, reason="cost")
    d.refresh_from_db()
    assert d.window_until <= timezone.now()
    audit = AuditEvent.objects.filter(action="deployment.end_window").get()
    assert audit.data["reason"] == "cost"
    assert cleanup.retire_warm_slot(d.pk)
    with pytest.raises(Conflict):
        actions.end_window(factories.api_actor(deployer), d.pk)
    back = actions.rollback(factories.api_actor(), d.pk)  # no window any more: a redeploy
    assert "redeploy" in back.reason


def test_a_new_deployment_closes_the_window_and_takes_the_slot(target, fleet):
    live(target)
    d = succeeded(target, "2.0.0", canary())
    warm(fleet, d)
    nxt = deploy(target, "3.0.0", canary())
    assert nxt.canary_slot == d.stable_slot
    d.refresh_from_db()
    assert d.window_until is None
    assert any("closed" in m for m in events_of(d, "window"))
    nxt = tick_until(nxt, lambda n: n.state == State.SUCCEEDED, what="the next release")
    assert fleet.status().slots[nxt.canary_slot].version == "3.0.0"
    assert nxt.window_until is not None  # 2.0.0 is warm now


def test_a_crash_in_the_middle_of_the_switch_back_resumes_without_repeating_a_step(
    target, fleet, monkeypatch
):
    live(target)
    d = succeeded(target, "2.0.0", canary())
    warm(fleet, d)
    before = instance_ids(fleet, d.stable_slot)
    back = actions.rollback(factories.api_actor(), d.pk)

    class Crashing(Recording):
        crashed = False

        def __getattr__(self, name):
            call = super().__getattr__(name)
            if name != "ensure_slot" or Crashing.crashed:
                return call

            def crash(*args, **kwargs):  # routed already; the worker dies before recording
                Crashing.crashed = True
                raise RuntimeError("worker killed mid-switch")

            return crash

    recording = Crashing(fleet)
    monkeypatch.setattr(tick, "integration_for", lambda row: recording)
    tick.tick(back.pk)
    back.refresh_from_db()
    assert Crashing.crashed and back.tick_failures == 1 and back.state == State.PROGRESSING
    assert fleet.status().routing.weights == {d.stable_slot: 100, d.canary_slot: 0}
    back = tick_until(back, lambda b: b.state == State.SUCCEEDED, what="the resumed switch")
    assert instance_ids(fleet, d.stable_slot) == before  # the warm instances were never replaced
    assert ("ensure_slot", d.stable_slot) not in recording.calls
    switches = [
        m for m in back.events.values_list("message", flat=True) if m.startswith("switched")
    ]
    assert len(switches) == 1  # the switch happened (and was recorded) once


def test_recreate_and_a_window_of_zero_keep_nothing(target, fleet):
    live(target)
    d = succeeded(target, "2.0.0", {"kind": "recreate", "replicas": 2, "health": FAST_HEALTH})
    assert d.window_until is None
    target.environment.rollback_window = 0
    target.environment.save()
    d = succeeded(target, "3.0.0", canary())
    assert d.window_until is None
    assert fleet.status().slots[d.stable_slot].desired == 0
    assert "window is off" in window_dict(target)["summary"]
    assert "redeploy" in actions.rollback(factories.api_actor(), d.pk).reason


def test_only_providers_that_can_hold_a_second_slot_get_a_window(target):
    assert registry.holds_warm_slot("local")
    assert registry.holds_warm_slot("aws-ecs") and registry.holds_warm_slot("aws-lambda")
    for router in ("service-selector", "gateway-api", "ingress-nginx", "istio"):
        assert registry.holds_warm_slot("kubernetes", {"router": {"kind": router}})
    assert not registry.holds_warm_slot("aws-route53")
    dns = factories.make_target(
        target.service, factories.make_environment("prod"), provider="aws-route53"
    )
    old, new = (factories.make_release(target.service, v) for v in ("1.0.0", "2.0.0"))
    d = Deployment(
        target=dns, release=new, from_release=old, strategy={"kind": "canary"}, state="succeeded"
    )
    assert actions.window_seconds(d) == 0
    assert "cannot keep the previous release warm" in window_dict(dns)["summary"]
    d.target = target
    assert actions.window_seconds(d) == 300
