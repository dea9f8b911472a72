"""Build channels and run the outbox in-process (the e2e tests run it in a worker)."""

from __future__ import annotations

from notifications import outbox, secrets
from notifications.models import Delivery, DeliveryStatus, NotificationChannel, Rule
from releases.models import DeploymentEvent
from tests.notifications.fakes import FakeSlack


def slack_channel(name="deploys", events=(), **rule) -> NotificationChannel:
    channel = NotificationChannel.objects.create(
        name=name,
        kind="slack",
        config={"channel": "C123"},
        secrets=secrets.seal({"bot_token": FakeSlack.TOKEN}),
    )
    Rule.objects.create(channel=channel, events=list(events), **rule)
    return channel


def channel(kind, config, values, name=None, events=()) -> NotificationChannel:
    c = NotificationChannel.objects.create(
        name=name or kind, kind=kind, config=config, secrets=secrets.seal(values)
    )
    Rule.objects.create(channel=c, events=list(events))
    return c


def fan_out(deployment) -> list[int]:
    ids = list(DeploymentEvent.objects.filter(deployment=deployment).values_list("pk", flat=True))
    return outbox.fanout(deployment.pk, ids)


def deliver_due() -> list[Delivery]:
    """Run every pending delivery once, oldest first."""
    rows = list(Delivery.objects.filter(status=DeliveryStatus.PENDING).order_by("id"))
    for row in rows:
        Delivery.objects.filter(pk=row.pk).update(next_attempt_at=row.created_at)
        outbox.deliver(row.pk)
    return [Delivery.objects.get(pk=r.pk) for r in rows]


def notify(deployment) -> list[Delivery]:
    fan_out(deployment)
    return deliver_due()
