"""A Redis restart in the middle of a rollout does not stop the reconcile loop: the Celery worker
(holding delayed ticks unacknowledged, as it always does mid-rollout) rides the restart out and the
rollout completes, every batch once. The Redis is this test's own server on its own port
(``tests/e2e/loop_stack.py``); the one the machine shares is never touched."""

from __future__ import annotations

import re
import time

import pytest

from releases import actions
from releases.models import Deployment, DeploymentEvent, State
from tests import factories
from tests.e2e.loop_stack import loop_stack
from tests.e2e.test_canary import canary
from tests.e2e.test_rolling_deploy import ROLLING, TERMINAL

pytestmark = pytest.mark.e2e

SLOW = {**ROLLING, "min_ready": "1500ms"}  # each batch waits: delayed ticks held by the worker
# a timed pause: the worker idles on the broker holding the pause's delayed tick unacknowledged
# (the case that made celery 5.7 exit: switchyard/broker.py)
PAUSING = canary({"set_weight": 50}, {"pause": {"duration": "6s"}}, {"set_weight": 100})


def deploy(target, version, strategy):
    factories.make_release(target.service, version, artifact={"sample": {"latency_ms": 1}})
    d, _ = actions.start_deployment(
        factories.api_actor(),
        service=target.service,
        environment=target.environment,
        version=version,
        strategy=strategy,
    )
    return d


def finished(stack, d, timeout=90):
    return stack.wait_for(
        lambda: Deployment.objects.filter(pk=d.pk, state__in=TERMINAL).first(),
        timeout=timeout,
        interval=0.2,
        what=f"deployment {d.pk} to finish",
    )


def batch_messages(d):
    return list(
        DeploymentEvent.objects.filter(deployment=d, kind="step", message__startswith="batch ")
        .order_by("id")
        .values_list("message", flat=True)
    )


def test_the_worker_survives_a_redis_restart_mid_rollout(transactional_db, settings):
    with loop_stack(settings, log_name="broker-restart") as stack:
        target = factories.make_target(factories.make_service("shop"))
        assert finished(stack, deploy(target, "1.0.0", ROLLING)).state == State.SUCCEEDED
        d = deploy(target, "2.0.0", SLOW)
        stack.wait_for(
            lambda: any(m.startswith("batch 2 of 4") for m in batch_messages(d)),
            timeout=30,
            what="batch 2",
        )
        stack.redis.restart()  # every queued and held message is gone with it
        done = finished(stack, d)  # fails at once if the worker exits
        worker_log = (stack.log_dir / "worker.log").read_text(errors="replace")
    assert "Connection to broker lost" in worker_log  # the restart did reach the worker
    assert "Unrecoverable error" not in worker_log
    assert done.state == State.SUCCEEDED, done.message
    starts = [m.split(":")[0] for m in batch_messages(d)]
    assert starts == [f"batch {n} of 4 started" for n in (1, 2, 3, 4)]


def test_the_worker_survives_a_redis_restart_while_it_holds_a_delayed_tick(
    transactional_db, settings
):
    with loop_stack(settings, log_name="broker-restart-pause") as stack:
        target = factories.make_target(factories.make_service("shop"))
        assert finished(stack, deploy(target, "1.0.0", ROLLING)).state == State.SUCCEEDED
        d = deploy(target, "2.0.0", PAUSING)
        stack.wait_for(
            lambda: "pausing" in (Deployment.objects.get(pk=d.pk).message or ""),
            timeout=30,
            what="the pause",
        )
        time.sleep(1.0)  # the worker is idle now, the pause's tick held until it is due
        stack.redis.restart()
        done = finished(stack, d)  # fails at once if the worker exits
        worker_log = (stack.log_dir / "worker.log").read_text(errors="replace")
    # it held the delayed tick (a threads pool reserves more than one message: as many as it has
    # threads, so more may be restored -- each tick taken once all the same, checked below)
    restored = [int(n) for n in re.findall(r"Restoring (\d+) unacknowledged message", worker_log)]
    assert restored and restored[0] >= 1, restored
    assert "Unrecoverable error" not in worker_log
    assert done.state == State.SUCCEEDED, done.message
    weights = list(
        DeploymentEvent.objects.filter(deployment=d, kind="step")
        .order_by("id")
        .values_list("message", flat=True)
    )
    assert len(weights) == len(set(weights)), weights  # no step taken twice
