"""API: notification channels, their rules, test messages, delivery logs, Slack user links
(``/api/v1/notifications/...``). Configuration needs the admin role everywhere (a channel hears
every service it is told to); anyone signed in may read it. Secrets are write-only: answers say
which are set (``"stored"`` or ``"env:NAME"``), never their values. Every change is audited."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from ninja import Field, Router, Status
from ninja.responses import codes_4xx

from integrations.notify import registry
from notifications import outbox, secrets
from notifications.models import ChatUser, Delivery, NotificationChannel, Rule
from notifications.triggers import TRIGGERS
from releases import audit
from releases.api.auth import actor_for, authorize, summarise
from releases.api.common import InvalidInput
from releases.api.schemas import ErrorOut, In, Out
from releases.errors import Conflict, NotFound

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


def channel_dict(c: NotificationChannel) -> dict:
    return {
        "id": c.pk,
        "name": c.name,
        "kind": c.kind,
        "config": c.config,
        "secrets": secrets.describe(c.secrets),
        "enabled": c.enabled,
        "disabled_reason": c.disabled_reason,
        "disabled_at": _ts(c.disabled_at),
        "created_at": _ts(c.created_at),
    }


def _check(kind: str, config: dict, values: dict) -> None:
    for name, value in values.items():
        if isinstance(value, dict) and set(value) != {"env"}:
            raise InvalidInput(
                f'The secret {name} must be a string or {{"env": NAME}}.',
                details={"errors": [{"path": f"secrets.{name}", "message": "is invalid"}]},
            )
    errors = [
        {"path": path, "message": message}
        for path, message in registry.validate(kind, config, secrets.for_validation(values))
    ]
    if errors:
        raise InvalidInput(summarise(errors, "The channel is invalid"), details={"errors": errors})


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
    _check(payload.kind, payload.config, payload.secrets)
    actor = actor_for(request)
    try:
        with transaction.atomic():
            channel = NotificationChannel.objects.create(
                name=payload.name,
                kind=payload.kind,
                config=payload.config,
                secrets=secrets.seal(payload.secrets),
                enabled=payload.enabled,
                created_by=request.user,
            )
            audit.record(actor, "notifications.channel_create", channel, channel_dict(channel))
    except IntegrityError:
        raise Conflict(f"A channel named {payload.name!r} exists already.") from None
    return Status(201, channel_dict(channel))


@router.get("/notifications/channels/{channel_id}", response={200: ChannelOut, **ERRORS})
def get_channel_view(request, channel_id: int):
    authorize(request, "notification_channel.view")
    return channel_dict(get_channel(channel_id))


@router.patch("/notifications/channels/{channel_id}", response={200: ChannelOut, **ERRORS})
def patch_channel(request, channel_id: int, payload: ChannelPatch):
    authorize(request, "notification_channel.update")
    channel = get_channel(channel_id)
    before = channel_dict(channel)
    values = secrets.stored(channel.secrets)
    if payload.secrets is not None:
        for name, value in payload.secrets.items():
            if value is None:
                values.pop(name, None)
            else:
                values[name] = value
    config = channel.config if payload.config is None else payload.config
    _check(channel.kind, config, values)
    with transaction.atomic():
        channel.config = config
        channel.secrets = secrets.seal(values)
        if payload.name is not None:
            channel.name = payload.name
        if payload.enabled is not None:
            channel.enabled = payload.enabled
            if payload.enabled:
                channel.disabled_reason, channel.disabled_at = "", None
        try:
            channel.save()
        except IntegrityError:
            raise Conflict(f"A channel named {payload.name!r} exists already.") from None
        audit.record(
            actor_for(request),
            "notifications.channel_update",
            channel,
            channel_dict(channel),
            before=before,
        )
    return channel_dict(channel)


@router.delete("/notifications/channels/{channel_id}", response={204: None, **ERRORS})
def delete_channel(request, channel_id: int):
    authorize(request, "notification_channel.delete")
    channel = get_channel(channel_id)
    with transaction.atomic():
        audit.record(
            actor_for(request),
            "notifications.channel_delete",
            channel,
            before=channel_dict(channel),
        )
        channel.delete()
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
        "sent_at": _ts(row.sent_at),
        "next_attempt_at": _ts(row.next_attempt_at),
    }


@router.post("/notifications/channels/{channel_id}/test", response={202: DeliveryOut, **ERRORS})
def test_channel(request, channel_id: int):
    """Send a test message (through the outbox: the answer is the queued delivery)."""
    authorize(request, "notification_channel.update")
    channel = get_channel(channel_id)
    if not channel.enabled:
        raise Conflict(
            f"The channel {channel.name!r} is disabled ({channel.disabled_reason or 'by hand'}): "
            "fix it and enable it first."
        )
    return Status(202, delivery_dict(outbox.send_test(channel, actor_for(request))))


@router.get(
    "/notifications/channels/{channel_id}/deliveries", response={200: list[DeliveryOut], **ERRORS}
)
def channel_deliveries(request, channel_id: int, limit: int = 50):
    """The channel's delivery log, newest first."""
    authorize(request, "notification_channel.view")
    channel = get_channel(channel_id)
    rows = Delivery.objects.filter(channel=channel).order_by("-id")[: max(1, min(limit, 500))]
    return [delivery_dict(r) for r in rows]


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


def rule_dict(r: Rule) -> dict:
    return {
        "id": r.pk,
        "channel": r.channel_id,
        "events": r.events,
        "services": r.services,
        "environments": r.environments,
        "enabled": r.enabled,
    }


def _check_events(events: list[str]) -> None:
    errors = [
        {"path": f"events[{i}]", "message": f"is not a moment: use one of {', '.join(TRIGGERS)}"}
        for i, e in enumerate(events)
        if e not in TRIGGERS
    ]
    if errors:
        raise InvalidInput(summarise(errors, "The rule is invalid"), details={"errors": errors})


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
    channel = get_channel(payload.channel)
    _check_events(payload.events)
    with transaction.atomic():
        rule = Rule.objects.create(
            channel=channel,
            events=payload.events,
            services=payload.services,
            environments=payload.environments,
            enabled=payload.enabled,
        )
        audit.record(actor_for(request), "notifications.rule_create", rule, rule_dict(rule))
    return Status(201, rule_dict(rule))


@router.delete("/notifications/rules/{rule_id}", response={204: None, **ERRORS})
def delete_rule(request, rule_id: int):
    authorize(request, "notification_channel.update")
    rule = Rule.objects.filter(pk=rule_id).first()
    if rule is None:
        raise NotFound(f"There is no rule {rule_id}.")
    with transaction.atomic():
        audit.record(actor_for(request), "notifications.rule_delete", rule, before=rule_dict(rule))
        rule.delete()
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


def link_dict(link: ChatUser) -> dict:
    return {
        "id": link.pk,
        "team_id": link.team_id,
        "slack_user_id": link.slack_user_id,
        "username": link.user.get_username(),
        "how": link.how,
    }


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
    try:
        with transaction.atomic():
            link = ChatUser.objects.create(
                team_id=payload.team_id,
                slack_user_id=payload.slack_user_id,
                user=user,
                how="explicit",
                linked_by=request.user.get_username(),
            )
            audit.record(actor_for(request), "notifications.slack_link", link, link_dict(link))
    except IntegrityError:
        raise Conflict(f"Slack user {payload.slack_user_id} is linked already.") from None
    return Status(201, link_dict(link))


@router.delete("/notifications/slack-links/{link_id}", response={204: None, **ERRORS})
def delete_link(request, link_id: int):
    link = ChatUser.objects.select_related("user").filter(pk=link_id).first()
    if link is None:
        raise NotFound(f"There is no Slack link {link_id}.")
    if link.user_id != request.user.pk:
        authorize(request, "chat_user.delete")
    with transaction.atomic():
        audit.record(actor_for(request), "notifications.slack_unlink", link, before=link_dict(link))
        link.delete()
    return Status(204, None)
