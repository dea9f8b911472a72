"""The delivery outbox: fan an event out to the channels whose rules match (rows first, tasks
after commit), then deliver one row -- claimed by a conditional update, sent with a timeout and no
transaction open, recorded. Transient errors retry with exponential backoff and full jitter (no
sooner than a 429's ``Retry-After``); a permanent one fails the row and disables the channel with
the reason; a row out of attempts fails alone. Safe to run twice, like every task here."""

from __future__ import annotations

import hashlib
import json
import logging
import random
from datetime import timedelta

from celery import current_app
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from integrations.notify import registry
from integrations.notify.base import TransportError
from integrations.notify.slack import blocks as slack_blocks
from notifications import notices, secrets, triggers, webhooks
from notifications.models import (
    Delivery,
    DeliveryStatus,
    FannedOut,
    NotificationChannel,
    Placement,
    SlackMessage,
)
from releases import audit
from releases.actors import Actor
from releases.models import DeploymentEvent

logger = logging.getLogger(__name__)

NOTIFY_QUEUE = "notify"
DELIVER_TASK = "notifications.deliver"
FANOUT_TASK = "notifications.fanout"
MAX_ATTEMPTS = 8
BACKOFF_BASE = 2.0  # seconds before the 2nd attempt; doubles each time
BACKOFF_CAP = 300.0
LEASE_SECONDS = 60  # longer than any send (every transport call times out in seconds)
WAIT_FOR_MESSAGE = 1.0  # a reply or an update waits this long for the message being posted


def enqueue_delivery(delivery_id: int, countdown: float = 0) -> None:
    try:
        current_app.send_task(
            DELIVER_TASK, args=(delivery_id,), queue=NOTIFY_QUEUE, countdown=countdown or None
        )
    except Exception:  # noqa: BLE001 -- the row is in the outbox: the sweep enqueues it again
        logger.warning("could not enqueue delivery %s", delivery_id, exc_info=True)


def backoff(attempts: int, retry_after: float | None = None) -> float:
    """Seconds before the next attempt after ``attempts`` failures: full jitter over an
    exponential ceiling (AWS's "exponential backoff and jitter"), never under ``retry_after``."""
    ceiling = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** max(0, attempts - 1))
    delay = random.uniform(ceiling / 2, ceiling)
    return max(delay, retry_after or 0.0)


def _bot(channel: NotificationChannel) -> bool:
    """A Slack channel with a bot token keeps one message per deployment (a webhook cannot)."""
    if channel.kind != "slack":
        return False
    try:
        return "bot_token" in secrets.stored(channel.secrets)
    except secrets.SecretError:
        return False


# --- fan-out ----------------------------------------------------------------------------------


def fanout(deployment_id: int, event_ids: list[int]) -> list[int]:
    """Outbox rows for these events of one deployment; returns the new rows' ids (enqueued after
    commit). An event fans out once, however often this runs."""
    channels = list(NotificationChannel.objects.filter(enabled=True).prefetch_related("rules"))
    d = notices.deployments().filter(pk=deployment_id).first()
    if d is None or not event_ids:
        return []
    events = DeploymentEvent.objects.filter(pk__in=event_ids, deployment_id=d.pk).order_by("id")
    service, environment = d.target.service.slug, d.target.environment.slug
    created: list[int] = []
    fresh: list[DeploymentEvent] = []
    with transaction.atomic():
        for event in events:
            if not _first_time(event.pk):
                continue
            fresh.append(event)
            trigger = triggers.trigger_of(event.kind, event.data, event.message)
            if trigger is None:
                continue
            for channel in channels:
                has_message = SlackMessage.objects.filter(channel=channel, deployment=d).exists()
                wanted = trigger != triggers.UPDATE and any(
                    r.matches(trigger, service, environment) for r in channel.rules.all()
                )
                bot = _bot(channel)
                placements = []
                if bot and (wanted or has_message):
                    placements.append(Placement.MESSAGE)  # post it, or bring it up to date
                    if wanted and trigger in triggers.REPLY:
                        placements.append(Placement.REPLY)
                elif wanted:
                    placements.append(Placement.MESSAGE)
                for placement in placements:
                    row = Delivery.objects.create(
                        channel=channel,
                        deployment=d,
                        event_id=event.pk,
                        trigger=trigger,
                        placement=placement,
                        next_attempt_at=timezone.now(),
                        event_at=event.created_at,
                    )
                    created.append(row.pk)
        transaction.on_commit(lambda: [enqueue_delivery(pk) for pk in created])
    if fresh and not transaction.get_connection().in_atomic_block:
        webhooks.tell(d, fresh)  # the spec's Flagger event / post-rollout hooks, once per event
    elif fresh:
        transaction.on_commit(lambda: webhooks.tell(d, fresh))
    return created


def _first_time(event_id: int) -> bool:
    try:
        with transaction.atomic():
            FannedOut.objects.create(event_id=event_id)
    except IntegrityError:
        return False
    return True


def send_test(channel: NotificationChannel, actor: Actor) -> Delivery:
    """Queue a test message to ``channel`` (it goes through the outbox like any other)."""
    with transaction.atomic():
        row = Delivery.objects.create(
            channel=channel,
            trigger="test",
            placement=Placement.TEST,
            next_attempt_at=timezone.now(),
            event_at=timezone.now(),
        )
        audit.record(actor, "notifications.test", channel, {"delivery": row.pk})
        transaction.on_commit(lambda: enqueue_delivery(row.pk))
    return row


# --- delivery ---------------------------------------------------------------------------------


def _claim(delivery_id: int) -> bool:
    now = timezone.now()
    due = Q(status=DeliveryStatus.PENDING, next_attempt_at__lte=now + timedelta(seconds=0.5)) | Q(
        status=DeliveryStatus.SENDING,
        lease_until__lt=now,  # a worker died while sending
    )
    return bool(
        Delivery.objects.filter(due, pk=delivery_id, attempts__lt=MAX_ATTEMPTS).update(
            status=DeliveryStatus.SENDING,
            lease_until=now + timedelta(seconds=LEASE_SECONDS),
            attempts=F("attempts") + 1,
        )
    )


def _finish(row: Delivery, status: str, error: str = "", **fields) -> None:
    Delivery.objects.filter(pk=row.pk, status=DeliveryStatus.SENDING).update(
        status=status, last_error=error[:2000], lease_until=None, **fields
    )


def _later(row: Delivery, seconds: float, error: str = "", *, counts: bool = True) -> float:
    """Back to pending, due in ``seconds`` (``counts=False``: this was no attempt)."""
    Delivery.objects.filter(pk=row.pk, status=DeliveryStatus.SENDING).update(
        status=DeliveryStatus.PENDING,
        next_attempt_at=timezone.now() + timedelta(seconds=seconds),
        lease_until=None,
        last_error=error[:2000],
        attempts=F("attempts") - (0 if counts else 1),
    )
    return seconds


def transport_options(kind: str) -> dict:
    options = {"timeout": settings.NOTIFY_TIMEOUT}
    if kind == "slack":
        options["base_url"] = settings.SLACK_API_URL
    return options


def deliver(delivery_id: int) -> float | None:
    """One attempt at one row; returns seconds until it should be tried again, or None."""
    if not _claim(delivery_id):
        return None
    row = Delivery.objects.select_related("channel").get(pk=delivery_id)
    channel = row.channel
    if not channel.enabled:
        _finish(row, DeliveryStatus.SKIPPED, f"the channel is disabled: {channel.disabled_reason}")
        return None
    try:
        transport = registry.build(
            channel.kind,
            channel.config,
            secrets.resolve(channel.secrets),
            **transport_options(channel.kind),
        )
        done = _send(row, channel, transport)
    except secrets.SecretError as exc:
        return _fail(row, channel, TransportError(str(exc), permanent=True))
    except TransportError as exc:
        return _fail(row, channel, exc)
    if isinstance(done, float):
        return done
    if done == "unchanged":
        _finish(row, DeliveryStatus.SKIPPED, "the message was already up to date")
    else:
        _finish(row, DeliveryStatus.SENT, sent_at=timezone.now())
    return None


def _send(row: Delivery, channel: NotificationChannel, transport) -> str | float:
    notice_id = f"sy_{row.pk}"
    if row.placement == Placement.TEST:
        transport.send(notices.test_notice(notice_id, channel.name, "Someone"))
        return "sent"
    d = notices.deployments().filter(pk=row.deployment_id).first()
    if d is None:  # deleted since: nothing to tell
        return "unchanged"
    event = DeploymentEvent.objects.filter(pk=row.event_id).first()
    bot = _bot(channel)
    if not bot:
        transport.send(notices.for_event(notice_id, row.trigger, d, event))
        return "sent"
    message, _ = SlackMessage.objects.get_or_create(channel=channel, deployment=d)
    if row.placement == Placement.REPLY:
        if not message.ts and _message_pending(channel, d):
            return _later(
                row, WAIT_FOR_MESSAGE, "waiting for the message to be posted", counts=False
            )
        transport.send(
            notices.for_event(notice_id, row.trigger, d, event), ref=message.ref(), reply=True
        )
        return "sent"
    # the deployment's one message, rendered from where it stands NOW (so order does not matter)
    notice = notices.for_event(notice_id, row.trigger, d, None)
    digest = hashlib.sha256(
        json.dumps(slack_blocks.message_blocks(notice), sort_keys=True).encode()
    ).hexdigest()
    if message.ts and digest == message.digest:
        return "unchanged"
    if not message.ts:
        now = timezone.now()
        claimed = (
            SlackMessage.objects.filter(pk=message.pk, ts="")
            .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
            .update(claimed_until=now + timedelta(seconds=LEASE_SECONDS))
        )
        if not claimed:  # another worker is posting it: update it once it has a ts
            return _later(
                row, WAIT_FOR_MESSAGE, "waiting for the message to be posted", counts=False
            )
    ref = transport.send(notice, ref=message.ref())
    SlackMessage.objects.filter(pk=message.pk).update(
        slack_channel=ref["channel"], ts=ref["ts"], digest=digest, claimed_until=None
    )
    return "sent"


def _message_pending(channel, d) -> bool:
    return Delivery.objects.filter(
        channel=channel,
        deployment=d,
        placement=Placement.MESSAGE,
        status__in=(DeliveryStatus.PENDING, DeliveryStatus.SENDING),
    ).exists()


def _fail(row: Delivery, channel: NotificationChannel, exc: TransportError) -> float | None:
    SlackMessage.objects.filter(  # let the next attempt post the message
        channel=channel, deployment_id=row.deployment_id, ts="", claimed_until__isnull=False
    ).update(claimed_until=None)
    if not exc.permanent and row.attempts < MAX_ATTEMPTS:
        return _later(row, backoff(row.attempts, exc.retry_after), exc.message)
    _finish(row, DeliveryStatus.FAILED, exc.message)
    if exc.permanent:
        disable(channel, exc.message)
    return None


def disable(channel: NotificationChannel, reason: str) -> None:
    """A permanent error: stop sending to the channel until someone fixes and re-enables it."""
    with transaction.atomic():
        changed = NotificationChannel.objects.filter(pk=channel.pk, enabled=True).update(
            enabled=False, disabled_reason=reason[:2000], disabled_at=timezone.now()
        )
        if changed:
            audit.record(
                Actor.system("notifications"),
                "notifications.channel_disabled",
                channel,
                {"reason": reason[:500]},
            )
            Delivery.objects.filter(channel=channel, status=DeliveryStatus.PENDING).update(
                status=DeliveryStatus.SKIPPED,
                last_error=f"the channel was disabled: {reason}"[:2000],
            )
