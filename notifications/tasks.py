"""Celery tasks on the ``notify`` queue (a worker of its own: ``celery -A switchyard worker -Q
notify``), so a slow or dead chat service never holds a worker that ticks rollouts. They take
ids, re-fetch, and are safe to run twice; names are the wire contract (``releases.queue`` sends
``notifications.fanout`` by name)."""

from __future__ import annotations

import logging
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.db.models import Exists, OuterRef
from django.utils import timezone

from notifications import outbox
from notifications.models import (
    Delivery,
    DeliveryStatus,
    FannedOut,
    InboundNonce,
    LinkCode,
    NotificationChannel,
)
from releases.models import DeploymentEvent

logger = logging.getLogger(__name__)

SWEEP_TASK = "notifications.sweep"
SWEEP_GRACE = timedelta(seconds=5)  # a row this overdue lost its message
LOOKBACK = timedelta(minutes=10)  # events whose fan-out message was lost are caught this far back


@shared_task(name=outbox.FANOUT_TASK, acks_late=True, ignore_result=True)
def fanout(deployment_id: int, event_ids: list[int]) -> int:
    return len(outbox.fanout(deployment_id, list(event_ids or [])))


@shared_task(name=outbox.DELIVER_TASK, acks_late=True, ignore_result=True)
def deliver(delivery_id: int) -> None:
    again = outbox.deliver(delivery_id)
    if again is not None:
        outbox.enqueue_delivery(delivery_id, countdown=again)


@shared_task(name=SWEEP_TASK, ignore_result=True)
def sweep() -> int:
    """Re-enqueue overdue rows and fan out events whose fan-out was lost (a broker outage)."""
    now = timezone.now()
    stale = Delivery.objects.filter(status=DeliveryStatus.SENDING, lease_until__lt=now)
    stale.filter(attempts__gte=outbox.MAX_ATTEMPTS).update(
        status=DeliveryStatus.FAILED, last_error="the worker sending it stopped; out of attempts"
    )
    due = list(
        Delivery.objects.filter(
            status__in=(DeliveryStatus.PENDING, DeliveryStatus.SENDING),
            attempts__lt=outbox.MAX_ATTEMPTS,
        )
        .filter(next_attempt_at__lt=now - SWEEP_GRACE)
        .exclude(status=DeliveryStatus.SENDING, lease_until__gte=now)
        .values_list("pk", flat=True)[:500]
    )
    for pk in due:
        outbox.enqueue_delivery(pk)
    if NotificationChannel.objects.filter(enabled=True).exists():
        lost = (
            DeploymentEvent.objects.filter(
                created_at__gte=now - LOOKBACK, created_at__lt=now - SWEEP_GRACE
            )
            .filter(~Exists(FannedOut.objects.filter(event_id=OuterRef("pk"))))
            .values_list("deployment_id", "pk")
            .order_by("id")[:500]
        )
        by_deployment: dict[int, list[int]] = {}
        for deployment_id, pk in lost:
            by_deployment.setdefault(deployment_id, []).append(pk)
        for deployment_id, pks in by_deployment.items():
            outbox.fanout(deployment_id, pks)
    InboundNonce.objects.filter(at__lt=now - timedelta(minutes=10)).delete()
    FannedOut.objects.filter(at__lt=now - timedelta(days=1)).delete()
    LinkCode.objects.filter(expires_at__lt=now - timedelta(days=1)).delete()
    if due:
        logger.info("notifications sweep re-enqueued %d delivery(ies)", len(due))
    return len(due)


RESPOND_ATTEMPTS = 5  # Slack accepts a response_url for 30 minutes; backoff stays well inside


@shared_task(name="notifications.respond", bind=True, ignore_result=True, acks_late=True)
def respond(self, response_url: str, body: dict) -> None:
    """Answer a Slack click through its ``response_url``. Transient failures (timeouts, refused
    connections, 408/429/5xx) are retried like the outbox's (exponential backoff with full
    jitter, never sooner than ``Retry-After``), up to ``RESPOND_ATTEMPTS`` tries; a permanent
    one (an expired or unknown URL: 4xx) is logged and dropped -- the action itself is done, and
    the deployment's message is brought up to date by the outbox anyway."""
    import json

    from integrations.notify.base import TransportError, post_json

    try:
        post_json(
            response_url,
            json.dumps(body).encode(),
            what="Slack's response_url",
            timeout=settings.NOTIFY_TIMEOUT,
        )
    except TransportError as exc:
        tries = self.request.retries + 1
        if exc.permanent or tries >= RESPOND_ATTEMPTS:
            logger.warning("could not answer a Slack click (try %d): %s", tries, exc.message)
            return
        logger.info("answering a Slack click failed (try %d), again later: %s", tries, exc.message)
        raise self.retry(
            countdown=outbox.backoff(tries, exc.retry_after), max_retries=RESPOND_ATTEMPTS
        ) from None
