"""Celery tasks: thin wrappers that take ids, re-fetch, and are safe to run twice."""

from __future__ import annotations

import logging
from datetime import timedelta

from celery import shared_task
from django.db.models import Q
from django.utils import timezone

from releases.models import ACTIVE_STATES, Deployment, State

logger = logging.getLogger(__name__)

PRIORITY_QUEUE = "priority"
DEFAULT_QUEUE = "default"
SWEEP_GRACE_SECONDS = 2


def enqueue_tick(deployment_id: int, *, priority: bool = False, countdown: float = 0) -> None:
    """Ask for a tick; a broker outage is logged, not raised (the sweep will catch up)."""
    try:
        advance_deployment.apply_async(
            (deployment_id,),
            queue=PRIORITY_QUEUE if priority else DEFAULT_QUEUE,
            countdown=countdown or None,
            priority=0 if priority else 5,
        )
    except Exception:  # noqa: BLE001 -- any broker failure: the database still holds the intent
        logger.warning("could not enqueue a tick for deployment %s", deployment_id, exc_info=True)


@shared_task(acks_late=True, ignore_result=True)
def advance_deployment(deployment_id: int) -> None:
    from releases.reconcile import tick

    result = tick(deployment_id)
    if not result.ran:
        return
    if result.changed_meanwhile:
        enqueue_tick(deployment_id, priority=True)
    elif result.wait is not None:
        enqueue_tick(deployment_id, priority=result.priority, countdown=result.wait)


@shared_task(ignore_result=True)
def sweep() -> int:
    """Re-enqueue every active deployment whose next tick is overdue (lost message, dead worker)."""
    now = timezone.now()
    due = (
        Deployment.objects.filter(state__in=ACTIVE_STATES)
        .exclude(state=State.AWAITING_APPROVAL)
        .filter(
            Q(next_tick_at__isnull=True)
            | Q(next_tick_at__lt=now - timedelta(seconds=SWEEP_GRACE_SECONDS))
        )
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
        .values_list("pk", "state")
    )
    count = 0
    for pk, state in due:
        enqueue_tick(pk, priority=state == State.ROLLING_BACK)
        count += 1
    if count:
        logger.info("sweep re-enqueued %d overdue deployment(s)", count)
    _enqueue_cleanups()
    return count


def _enqueue_cleanups() -> None:
    """Slots kept after a blue-green or canary rollback whose time is up (``releases.cleanup``)."""
    from releases.cleanup import due

    for pk in due():
        try:
            cleanup_slot.apply_async((pk,), queue=DEFAULT_QUEUE)
        except Exception:  # noqa: BLE001 -- any broker failure: the next sweep tries again
            logger.warning("could not enqueue the cleanup of deployment %s", pk, exc_info=True)


@shared_task(acks_late=True, ignore_result=True)
def cleanup_slot(deployment_id: int) -> None:
    """Scale down the slot a rollback kept for inspection, if it is due and unused."""
    from releases.cleanup import clean_up

    clean_up(deployment_id)


@shared_task(ignore_result=True)
def sample_metrics() -> int:
    """One round of request samples for the live charts (see ``releases.metrics``). Beat runs it
    every ``settings.METRICS_INTERVAL`` seconds; while a round runs, the next is a no-op."""
    from releases.metrics import sample_all

    return sample_all()
