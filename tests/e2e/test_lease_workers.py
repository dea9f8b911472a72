"""Two Celery workers and a target slowed past the lease (every change held 3 s on its way to the
fleet agent by ``integrations.local.slow_proxy``, the lease is 2 s): the heartbeat keeps each
tick's claim, so the two never act on one deployment at once and every batch is taken once; and
a worker SIGKILLed in the middle of a tick is taken over by the other as soon as its claim lapses.
Real processes: this test's own Redis, a fleet agent, beat (1 s sweep) and two workers."""

from __future__ import annotations

import time

import pytest

from releases import actions
from releases.models import DeploymentEvent, State
from tests import factories
from tests.e2e.loop_stack import holder, loop_stack
from tests.e2e.test_broker_restart import batch_messages, deploy, finished
from tests.e2e.test_rolling_deploy import ROLLING

pytestmark = pytest.mark.e2e

SLOWED = 3.0  # seconds each change takes: longer than actions.LEASE_SECONDS


def first_release(stack):
    target = factories.make_target(factories.make_service("shop"))
    assert finished(stack, deploy(target, "1.0.0", ROLLING), timeout=120).state == State.SUCCEEDED
    return target


def test_two_workers_on_a_target_slowed_past_the_lease_take_every_batch_once(
    transactional_db, settings
):
    assert SLOWED > actions.LEASE_SECONDS
    with loop_stack(
        settings, workers=("worker-a", "worker-b"), slow=SLOWED, log_name="lease-2w"
    ) as stack:
        target = first_release(stack)
        d = deploy(target, "2.0.0", ROLLING)
        done = finished(stack, d, timeout=180)
        fleet_log = (stack.log_dir / "fleet.log").read_text(errors="replace")
        held = stack.proxy.held
    assert done.state == State.SUCCEEDED, done.message
    assert held > 0  # the changes really were slowed
    starts = [m.split(":")[0] for m in batch_messages(d)]
    assert starts == [f"batch {n} of 4 started" for n in (1, 2, 3, 4)]
    assert "refused" not in fleet_log  # no two ticks ever acted at once: nothing to fence off
    steps = list(DeploymentEvent.objects.filter(deployment=d).values_list("kind", "message"))
    assert len(steps) == len(set(steps)), steps


def test_a_worker_killed_mid_tick_is_taken_over_by_the_other_when_its_claim_lapses(
    transactional_db, settings
):
    with loop_stack(
        settings, workers=("worker-a", "worker-b"), slow=SLOWED, log_name="lease-kill"
    ) as stack:
        target = first_release(stack)
        d = deploy(target, "2.0.0", ROLLING)
        stack.wait_for(
            lambda: any(m.startswith("batch 2 of 4") for m in batch_messages(d)),
            timeout=60,
            what="batch 2",
        )
        victim = stack.wait_for(lambda: holder(stack, d.pk), timeout=30, what="a tick under way")
        killed_at = time.monotonic()
        stack.supervisor.kill(victim)  # SIGKILL mid-tick (its change is held in the proxy)
        survivor = stack.wait_for(
            lambda: (h := holder(stack, d.pk)) and h != victim and h,
            timeout=30,
            interval=0.05,
            what="the other worker to take the deployment over",
        )
        taken_over_after = time.monotonic() - killed_at
        done = finished(stack, d, timeout=180)
    print(f"\n{victim} killed mid-tick; {survivor} took over after {taken_over_after:.2f}s")
    assert survivor != victim
    assert done.state == State.SUCCEEDED, done.message
    starts = [m.split(":")[0] for m in batch_messages(d)]
    assert starts == [f"batch {n} of 4 started" for n in (1, 2, 3, 4)]
    # the old 15 s lease stalled a deployment that long; a lapsed 2 s claim is taken at once
    assert taken_over_after < 15
