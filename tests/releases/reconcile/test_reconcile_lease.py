"""Leases: short, renewed by a heartbeat, fenced. Against a real fleet agent, tick by tick in this
process; "another worker" is a second tick (another owner id) run at the moment the test picks,
which is what a second Celery worker does after the first one's claim lapsed."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from integrations.base import Routing, StaleFence
from integrations.local.target import LocalTarget
from releases import actions
from releases.models import Deployment, DeploymentEvent, State
from releases.reconcile import lease, tick
from tests.releases.reconcile import test_reconcile_switch as switch
from tests.releases.reconcile.test_reconcile_switch import FAST_HEALTH, deploy, live, tick_until

agent, fleet = switch.agent, switch.fleet  # the real fleet agent fixtures

ROLLING = {"kind": "rolling", "replicas": 2, "batch_size": 1, "health": FAST_HEALTH}


def wait_until_ready(fleet, slot, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = fleet.status().slots.get(slot)
        if status is not None and status.ready and status.ready == status.desired:
            return
        time.sleep(0.05)
    raise AssertionError(f"slot {slot} never became ready")


def lapse(d):
    """The owner stopped renewing (killed, frozen): its claim is over."""
    Deployment.objects.filter(pk=d.pk).update(lease_until=timezone.now() - timedelta(seconds=1))


class Hooked:
    """A fresh real target per tick (as in production) with a hook before one kind of call."""

    hooks: dict = {}
    log: list = []  # every call that reached a real target, by name

    def __init__(self, inner: LocalTarget):
        self.inner = inner
        self.calls: list[str] = []

    @property
    def fence(self):
        return self.inner.fence

    @fence.setter
    def fence(self, value):
        self.inner.fence = value

    def __getattr__(self, name):
        method = getattr(self.inner, name)

        def call(*args, **kwargs):
            hook = Hooked.hooks.pop(name, None)
            if hook is None and name in lease.MUTATING:
                hook = Hooked.hooks.pop("first change", None)
            if hook is not None:
                hook()
            Hooked.log.append(name)
            return method(*args, **kwargs)

        return call


@pytest.fixture
def hooked(agent, settings, monkeypatch):
    settings.FLEET_URL, settings.FLEET_TOKEN = agent.url, agent.token
    Hooked.hooks = {}
    Hooked.log = []
    monkeypatch.setattr(
        tick,
        "integration_for",
        lambda row: Hooked(LocalTarget(row.key, {}, fleet_url=agent.url, token=agent.token)),
    )
    return Hooked.hooks


def test_the_fleet_agent_refuses_a_change_fenced_older_than_one_it_applied(fleet):
    fleet.fence = (3, 7)
    fleet.set_routing(Routing(weights=None, stable_slot="blue"))
    fleet.fence = (3, 6)  # an older claim on the same deployment
    with pytest.raises(StaleFence):
        fleet.set_routing(Routing(weights=None, stable_slot="green"))
    with pytest.raises(StaleFence):
        fleet.remove_slot("blue")
    fleet.fence = (2, 9)  # an older deployment of the same target
    with pytest.raises(StaleFence):
        fleet.set_routing(Routing(weights=None, stable_slot="green"))
    assert fleet.status().routing.stable_slot == "blue"
    fleet.fence = (3, 7)  # the same claim again: the same tick's next call
    fleet.set_routing(Routing(weights=None, stable_slot="blue", canary_slot="green"))
    fleet.fence = (4, 1)  # the next deployment's first claim
    fleet.set_routing(Routing(weights=None, stable_slot="green"))
    fleet.fence = None  # an unfenced call (a cleanup, an operator's CLI) is not refused
    fleet.set_routing(Routing(weights=None, stable_slot="blue"))
    assert fleet.status().routing.stable_slot == "blue"


def test_every_claim_has_a_newer_generation_and_a_live_claim_cannot_be_taken(target, fleet):
    live(target)
    d = deploy(target, "2.0.0", ROLLING)
    first = actions.claim(d.pk, "worker-a")
    assert actions.claim(d.pk, "worker-b") is None
    assert actions.renew_claim(d.pk, "worker-a", first.lease_generation)
    lapse(d)
    second = actions.claim(d.pk, "worker-b")
    assert second.lease_generation == first.lease_generation + 1
    assert not actions.renew_claim(d.pk, "worker-a", first.lease_generation)


def test_a_tick_that_lost_its_lease_abandons_before_acting(target, fleet, hooked):
    live(target)
    d = tick_until(
        deploy(target, "2.0.0", ROLLING), lambda d: d.state == State.PROGRESSING, what="start"
    )
    wait_until_ready(fleet, d.canary_slot)  # so the next tick has something to do
    before = Deployment.objects.get(pk=d.pk)
    events_before = DeploymentEvent.objects.filter(deployment=d).count()
    routing_before = fleet.status()
    Hooked.log.clear()

    def another_worker_takes_over():  # while this tick reads the target's status
        lapse(d)
        assert actions.claim(d.pk, "another-worker") is not None

    hooked["status"] = another_worker_takes_over
    result = tick.tick(d.pk)
    assert result.ran is False
    assert Hooked.log == ["status"]  # it looked, and acted on nothing
    after = Deployment.objects.get(pk=d.pk)
    assert after.version == before.version and after.step_index == before.step_index
    assert after.lease_owner == "another-worker"  # not given back by the stale tick
    assert DeploymentEvent.objects.filter(deployment=d).count() == events_before
    now = fleet.status()
    assert now.routing == routing_before.routing
    assert {n: s.desired for n, s in now.slots.items()} == {
        n: s.desired for n, s in routing_before.slots.items()
    }


def test_a_stale_call_that_lands_after_the_newer_tick_is_refused(target, fleet, hooked):
    live(target)
    d = tick_until(
        deploy(target, "2.0.0", ROLLING), lambda d: d.state == State.PROGRESSING, what="start"
    )
    wait_until_ready(fleet, d.canary_slot)  # so the next tick has something to do
    newer = {}

    def stalls_and_is_overtaken():
        # this (stale) tick passed its lease check and its call is on the wire; meanwhile its
        # claim lapses and another worker ticks the deployment through the same step
        lapse(d)
        newer["result"] = tick.tick(d.pk)
        newer["slots"] = {n: s.desired for n, s in fleet.status().slots.items()}

    hooked["first change"] = stalls_and_is_overtaken
    result = tick.tick(d.pk)
    assert newer["result"].ran is True
    assert result.ran is False  # the agent refused the stale call: the tick abandoned
    assert {n: s.desired for n, s in fleet.status().slots.items()} == newer["slots"]
    steps = list(
        DeploymentEvent.objects.filter(deployment=d, kind__in=("step", "weights")).values_list(
            "message", flat=True
        )
    )
    assert len(steps) == len(set(steps)), steps  # what the newer tick did, once; nothing stale


@pytest.mark.django_db(transaction=True)
def test_the_heartbeat_keeps_the_lease_through_a_call_slower_than_the_lease(target, fleet, hooked):
    live(target)
    d = tick_until(
        deploy(target, "2.0.0", ROLLING), lambda d: d.state == State.PROGRESSING, what="start"
    )
    taken = []
    slow = threading.Event()

    def rival():  # another worker asking for the deployment all the while
        while not slow.is_set():
            if actions.claim(d.pk, "rival") is not None:
                taken.append(True)
            time.sleep(0.1)
        from django.db import connection

        connection.close()

    def slower_than_the_lease():
        time.sleep(actions.LEASE_SECONDS * 1.75)

    wait_until_ready(fleet, d.canary_slot)  # so the next tick has something to do
    hooked["first change"] = slower_than_the_lease
    thread = threading.Thread(target=rival)
    thread.start()
    try:
        result = tick.tick(d.pk)
    finally:
        slow.set()
        thread.join()
    assert taken == []
    assert result.ran is True
    d.refresh_from_db()
    assert DeploymentEvent.objects.filter(deployment=d, kind="weights").exists()  # it recorded


def test_the_lease_check_renews_the_claim(target, fleet):
    live(target)
    d = deploy(target, "2.0.0", ROLLING)
    claimed = actions.claim(d.pk, "worker-a")
    Deployment.objects.filter(pk=d.pk).update(lease_until=timezone.now() + timedelta(seconds=0.2))
    lease.Lease(d.pk, "worker-a", claimed.lease_generation).check()
    d.refresh_from_db()
    assert d.lease_until > timezone.now() + timedelta(seconds=1)


def test_one_heartbeat_thread_renews_every_lease_of_the_process_and_ends_with_the_last(
    monkeypatch,
):
    """A worker of 8 threads holds up to 8 leases: one thread renews them all (with one database
    connection, where a thread per tick opened one per slow tick), each on its own schedule, only
    while it is held, and stops when none is left."""
    renewed: dict[int, int] = {}
    monkeypatch.setattr(
        lease.Lease,
        "renew",
        lambda self: renewed.update({self.deployment_id: renewed.get(self.deployment_id, 0) + 1}),
    )
    leases = [lease.Lease(n, "worker-a", 1) for n in range(3)]
    for held in leases:
        held.interval = 0.05
        held.__enter__()
    time.sleep(0.4)
    beating = [t for t in threading.enumerate() if t.name == "lease-heartbeat"]
    assert len(beating) == 1
    assert all(renewed.get(n, 0) >= 4 for n in range(3)), renewed
    leases[0].__exit__(None, None, None)
    before = renewed[0]
    time.sleep(0.2)
    assert renewed[0] == before  # given back: not renewed any more
    for held in leases[1:]:
        held.__exit__(None, None, None)
    time.sleep(0.2)
    assert not [t for t in threading.enumerate() if t.name == "lease-heartbeat"]
    assert lease._heartbeat.held() == 0


def test_one_chain_of_ticks_per_deployment_however_many_copies_the_queue_holds(
    target, fleet, monkeypatch
):
    """Each tick enqueues its successor, carrying the ``next_tick_at`` it set. Behind a backlog
    longer than the sweep's grace, the sweep used to add a tick that always ran -- one more chain
    per deployment per sweep, which at 100 canaries multiplied until ticks lagged by a minute.
    Now a copy (the sweep's stand-in, a redelivered message) runs only if no tick has run since
    it was scheduled: the first copy to arrive ticks, the others claim nothing."""
    from releases.reconcile import tasks

    sent: list[dict] = []
    monkeypatch.setattr(tasks.queue, "enqueue_tick", lambda pk, **kw: sent.append(kw))
    live(target)
    d = deploy(target, "2.0.0", ROLLING)
    first = tick.tick(d.pk)  # a command's tick (no due): always runs
    assert first.ran and first.due is not None
    d.refresh_from_db()
    assert d.next_tick_at == first.due

    # the loop's successor is late; the sweep sees it overdue and sends its stand-in
    Deployment.objects.filter(pk=d.pk).update(next_tick_at=first.due - timedelta(seconds=30))
    stale = Deployment.objects.get(pk=d.pk).next_tick_at
    tasks.sweep()
    assert sent[-1]["due"] == stale

    # both copies arrive: the first runs and schedules one successor, the second claims nothing
    one = tick.tick(d.pk, due=stale)
    assert one.ran and one.due is not None and one.due != stale
    assert tick.tick(d.pk, due=stale).ran is False
    assert tick.tick(d.pk, due=one.due).ran is True  # the one live chain goes on
