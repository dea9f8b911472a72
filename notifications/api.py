"""API: notification channels, their rules, test messages, delivery logs, Slack user links
(``/api/v1/notifications/...``). Configuration needs the admin role everywhere (a channel hears
every service it is told to); anyone signed in may read it. Secrets are write-only: answers say
which are set (``"stored"`` or ``"env:NAME"``), never their values. Every change is audited."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from ninja import Field, Router, Status
from ninja.responses import codes_4xx

from notifications import config
from notifications.config import channel_dict, link_dict, rule_dict
from notifications.models import ChatUser, Delivery, NotificationChannel, Rule
from notifications.triggers import TRIGGERS
from releases.api.auth import actor_for, authorize
from releases.api.schemas import ErrorOut, In, Out
from releases.errors import NotFound

__all__ = ["channel_dict", "link_dict", "rule_dict", "router"]

router = Router(tags=["notifications"])
ERRORS = {codes_4xx: ErrorOut}
SecretValue = str | dict[str, str] | None


def _ts(value):
    return value.isoformat() if value else None


# --- channels ---------------------------------------------------------------------------------


class ChannelIn(In):
    name: str = Field(..., min_length=1, max_length=100)
    kind: str = Field(..., description="slack | teams | webhook | email")
    config: dict[str, Any] = {}
    secrets: dict[str, SecretValue] = Field(
        {}, description='each a value (stored encrypted) or {"env": "VARIABLE"}'
    )
    enabled: bool = True


class ChannelPatch(In):
    name: str | None = Field(None, min_length=1, max_length=100)
    config: dict[str, Any] | None = None
    secrets: dict[str, SecretValue] | None = Field(None, description="merged; null removes one")
    enabled: bool | None = Field(None, description="true re-enables a disabled channel")


class ChannelOut(Out):
    id: int
    name: str
    kind: str
    config: dict[str, Any]
    secrets: dict[str, str]
    enabled: bool
    disabled_reason: str
    disabled_at: str | None
    created_at: str | None


def get_channel(channel_id: int) -> NotificationChannel:
    channel = NotificationChannel.objects.filter(pk=channel_id).first()
    if channel is None:
        raise NotFound(f"There is no notification channel {channel_id}.")
    return channel


@router.get("/notifications/channels", response={200: list[ChannelOut], **ERRORS})
def list_channels(request):
    authorize(request, "notification_channel.view")
    return [channel_dict(c) for c in NotificationChannel.objects.all()]


@router.post("/notifications/channels", response={201: ChannelOut, **ERRORS})
def create_channel(request, payload: ChannelIn):
    """A channel (admins): its kind's config and secrets are validated by the transport."""
    authorize(request, "notification_channel.create")
    channel = config.create_channel(
        actor_for(request),
        name=payload.name,
        kind=payload.kind,
        config=payload.config,
        values=payload.secrets,
        enabled=payload.enabled,
    )
    return Status(201, channel_dict(channel))


@router.get("/notifications/channels/{channel_id}", response={200: ChannelOut, **ERRORS})
def get_channel_view(request, channel_id: int):
    authorize(request, "notification_channel.view")
    return channel_dict(get_channel(channel_id))


@router.patch("/notifications/channels/{channel_id}", response={200: ChannelOut, **ERRORS})
def patch_channel(request, channel_id: int, payload: ChannelPatch):
    authorize(request, "notification_channel.update")
    channel = config.update_channel(
        actor_for(request),
        get_channel(channel_id),
        name=payload.name,
        config=payload.config,
        values=payload.secrets,
        enabled=payload.enabled,
    )
    return channel_dict(channel)


@router.delete("/notifications/channels/{channel_id}", response={204: None, **ERRORS})
def delete_channel(request, channel_id: int):
    authorize(request, "notification_channel.delete")
    config.delete_channel(actor_for(request), get_channel(channel_id))
    return Status(204, None)


class DeliveryOut(Out):
    id: int
    trigger: str
    placement: str
    status: str
    attempts: int
    last_error: str
    deployment: int | None
    created_at: str | None
    event_at: str | None = Field(None, description="when the event happened")
    sent_at: str | None
    next_attempt_at: str | None


def delivery_dict(row: Delivery) -> dict:
    return {
        "id": row.pk,
        "trigger": row.trigger,
        "placement": row.placement,
        "status": row.status,
        "attempts": row.attempts,
        "last_error": row.last_error,
        "deployment": row.deployment_id,
        "created_at": _ts(row.created_at),
        "event_at": _ts(row.event_at),
        "sent_at": _ts(row.sent_at),
        "next_attempt_at": _ts(row.next_attempt_at),
    }


@router.post("/notifications/channels/{channel_id}/test", response={202: DeliveryOut, **ERRORS})
def test_channel(request, channel_id: int):
    """Send a test message (through the outbox: the answer is the queued delivery)."""
    authorize(request, "notification_channel.update")
    delivery = config.send_test(actor_for(request), get_channel(channel_id))
    return Status(202, delivery_dict(delivery))


@router.get(
    "/notifications/channels/{channel_id}/deliveries", response={200: list[DeliveryOut], **ERRORS}
)
def channel_deliveries(request, channel_id: int, limit: int = 50):
    """The channel's delivery log, newest first."""
    authorize(request, "notification_channel.view")
    channel = get_channel(channel_id)
    rows = Delivery.objects.filter(channel=channel).order_by("-id")[: max(1, min(limit, 500))]
    return [delivery_dict(r) for r in rows]


@router.get(
    "/notifications/channels/{channel_id}/dead-letters",
    response={200: list[DeliveryOut], **ERRORS},
)
def channel_dead_letters(request, channel_id: int, limit: int = 50):
    """Deliveries that failed for good (a permanent error, or out of attempts) or were dropped
    when the channel was disabled, newest first: ``POST /notifications/deliveries/{id}/retry``
    sends one again."""
    authorize(request, "notification_channel.view")
    rows = config.dead_letters(get_channel(channel_id))[: max(1, min(limit, 500))]
    return [delivery_dict(r) for r in rows]


@router.post("/notifications/deliveries/{delivery_id}/retry", response={202: DeliveryOut, **ERRORS})
def retry_delivery(request, delivery_id: int):
    """Send a dead letter again from its first attempt (admins; audited). 409 if it is not a
    dead letter or its channel is disabled."""
    authorize(request, "notification_channel.update")
    row = Delivery.objects.select_related("channel").filter(pk=delivery_id).first()
    if row is None:
        raise NotFound(f"There is no delivery {delivery_id}.")
    return Status(202, delivery_dict(config.retry_delivery(actor_for(request), row)))


# --- rules ------------------------------------------------------------------------------------


class RuleIn(In):
    channel: int
    events: list[str] = Field([], description="moments (GET /notifications/triggers); [] all")
    services: list[str] = Field([], description="service slugs; [] every service")
    environments: list[str] = Field([], description="environment slugs; [] every one")
    enabled: bool = True


class RuleOut(Out):
    id: int
    channel: int
    events: list[str]
    services: list[str]
    environments: list[str]
    enabled: bool


@router.get("/notifications/triggers", response={200: dict[str, str], **ERRORS})
def list_triggers(request):
    """The moments a rule may name, with what each means."""
    authorize(request, "notification_channel.view")
    return TRIGGERS


@router.get("/notifications/rules", response={200: list[RuleOut], **ERRORS})
def list_rules(request):
    authorize(request, "notification_channel.view")
    return [rule_dict(r) for r in Rule.objects.all()]


@router.post("/notifications/rules", response={201: RuleOut, **ERRORS})
def create_rule(request, payload: RuleIn):
    authorize(request, "notification_channel.update")
    rule = config.create_rule(
        actor_for(request),
        get_channel(payload.channel),
        events=payload.events,
        services=payload.services,
        environments=payload.environments,
        enabled=payload.enabled,
    )
    return Status(201, rule_dict(rule))


@router.delete("/notifications/rules/{rule_id}", response={204: None, **ERRORS})
def delete_rule(request, rule_id: int):
    authorize(request, "notification_channel.update")
    rule = Rule.objects.filter(pk=rule_id).first()
    if rule is None:
        raise NotFound(f"There is no rule {rule_id}.")
    config.delete_rule(actor_for(request), rule)
    return Status(204, None)


# --- Slack users ------------------------------------------------------------------------------


class SlackLinkIn(In):
    team_id: str = Field(..., min_length=1, max_length=32)
    slack_user_id: str = Field(..., min_length=1, max_length=32)
    username: str = Field(..., description="the Switchyard user the Slack user acts as")


class SlackLinkOut(Out):
    id: int
    team_id: str
    slack_user_id: str
    username: str
    how: str


@router.get("/notifications/slack-links", response={200: list[SlackLinkOut], **ERRORS})
def list_links(request):
    authorize(request, "notification_channel.view")
    return [link_dict(x) for x in ChatUser.objects.select_related("user")]


@router.post("/notifications/slack-links", response={201: SlackLinkOut, **ERRORS})
def create_link(request, payload: SlackLinkIn):
    """Let a Slack user act as a Switchyard user in chat-ops (admins; a user may link
    themselves)."""
    if payload.username != request.user.get_username():
        authorize(request, "chat_user.create")
    user = get_user_model().objects.filter(username=payload.username, is_active=True).first()
    if user is None:
        raise NotFound(f"There is no user {payload.username!r}.")
    link = config.link_slack_user(
        actor_for(request), team_id=payload.team_id, slack_user_id=payload.slack_user_id, user=user
    )
    return Status(201, link_dict(link))


@router.delete("/notifications/slack-links/{link_id}", response={204: None, **ERRORS})
def delete_link(request, link_id: int):
    link = ChatUser.objects.select_related("user").filter(pk=link_id).first()
    if link is None:
        raise NotFound(f"There is no Slack link {link_id}.")
    if link.user_id != request.user.pk:
        authorize(request, "chat_user.delete")
    config.unlink_slack_user(actor_for(request), link)
    return Status(204, None)
