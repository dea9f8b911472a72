"""Celery tasks: thin wrappers that take ids, re-fetch, and are safe to run twice.

Each task is named explicitly (``releases.tasks.*``, see ``releases.queue``): the names are the
contract with messages already on the broker and with beat's schedule, whatever module holds the
code. Ticks are enqueued through ``releases.queue``, never by importing this module.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta

from celery import shared_task
from django.db.models import Q
from django.utils import timezone

from releases import queue
from releases.live import charts
from releases.models import ACTIVE_STATES, Deployment, State
from releases.reconcile import cleanup, observe, tick

logger = logging.getLogger(__name__)
lag_logger = logging.getLogger("releases.reconcile.lag")

SWEEP_GRACE_SECONDS = 2


@shared_task(name=queue.TICK_TASK, acks_late=True, ignore_result=True, bind=True)
def advance_deployment(self, deployment_id: int) -> None:
    due_at = getattr(self.request, "due_at", None)  # set by releases.queue.enqueue_tick
    started, cpu = time.time(), time.thread_time()
    due = getattr(self.request, "tick_due", None)  # the next_tick_at it was scheduled for
    try:
        result = tick.tick(deployment_id, due=datetime.fromisoformat(due) if due else None)
    finally:
        if due_at is not None:
            # tick lag: due -> started (queueing behind other ticks, a busy worker), and what
            # the tick took: wall time (waiting on the target, Postgres, the GIL) and this
            # thread's CPU; bench/scale.py reads these lines
            lag_logger.info(
                "tick lag %.1f ms, took %.1f ms, %.1f ms CPU (deployment %s)",
                1000 * (started - due_at),
                1000 * (time.time() - started),
                1000 * (time.thread_time() - cpu),
                deployment_id,
            )
    if not result.ran:
        return
    if result.changed_meanwhile:
        queue.enqueue_tick(deployment_id, priority=result.priority, due=result.due)
    elif result.wait is not None:
        queue.enqueue_tick(
            deployment_id, priority=result.priority, countdown=result.wait, due=result.due
        )


@shared_task(name=queue.SWEEP_TASK, ignore_result=True)
def sweep() -> int:
    """Re-enqueue every active deployment whose next tick is overdue (lost message, dead worker).
    It used to add a tick that always ran: behind a backlog longer than the grace, every sweep
    started one more chain of ticks for each deployment (each tick enqueues its successor), and at
    100 canaries the chains multiplied until ticks lagged by a minute (docs/serving.md)."""
    now = timezone.now()
    due = (
        Deployment.objects.filter(state__in=ACTIVE_STATES)
        .exclude(state=State.AWAITING_APPROVAL)
        .filter(
            Q(next_tick_at__isnull=True)
            | Q(next_tick_at__lt=now - timedelta(seconds=SWEEP_GRACE_SECONDS))
        )
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
        .values_list("pk", "state", "next_tick_at")
    )
    count = 0
    for pk, state, next_tick_at in due:
        # in place of the tick due then: if that one was only late (a backlog, not a loss), the
        # first of the two to arrive runs and the other claims nothing (releases.actions.claim)
        queue.enqueue_tick(pk, priority=state == State.ROLLING_BACK, due=next_tick_at)
        count += 1
    if count:
        logger.info("sweep re-enqueued %d overdue deployment(s)", count)
    _enqueue_cleanups()
    observe.settle()  # targets whose instances were still draining when their rollout ended
    return count


def _enqueue_cleanups() -> None:
    """Slots kept after a blue-green or canary rollback whose time is up
    (``releases.reconcile.cleanup``)."""
    for pk in cleanup.due():
        queue.enqueue_cleanup(pk)
    for pk in cleanup.due_windows():  # rollback windows that are over: retire the warm slot
        queue.enqueue_cleanup(pk)


@shared_task(name=queue.CLEANUP_TASK, acks_late=True, ignore_result=True)
def cleanup_slot(deployment_id: int) -> None:
    """Scale down the slot a rollback kept for inspection, or the warm slot of a rollback window
    that is over (``releases.reconcile.cleanup``), if it is due and unused."""
    if not cleanup.clean_up(deployment_id):
        cleanup.retire_warm_slot(deployment_id)


@shared_task(name=queue.SAMPLE_TASK, ignore_result=True)
def sample_metrics() -> int:
    """One round of request samples for the live charts (see ``releases.live.charts``). Beat runs it
    every ``settings.METRICS_INTERVAL`` seconds; while a round runs, the next is a no-op."""
    return charts.sample_all()
