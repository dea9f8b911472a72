"""The changes to notification settings, one function each, shared by the API
(``notifications.api``) and the page (``notifications.views``): channels, rules, Slack user links
(explicit, or by a one-time link code redeemed with ``/switchyard link <code>``), and retrying a
dead letter. Each checks the actor's role with ``releases.governance.policy.require`` (the API
and the page ask the same question, a token's scopes included), validates, writes, and audits in
one transaction; refusals are ``DomainError``s whose message both show as is.

Secrets are write-only: given as a value (stored encrypted) or ``{"env": NAME}``; nothing here
returns them, and the audit trail records only which are set (``secrets.describe``)."""

from __future__ import annotations

import hashlib
import secrets as random
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from integrations.notify import registry
from notifications import outbox, secrets
from notifications.models import (
    ChatUser,
    Delivery,
    DeliveryStatus,
    LinkCode,
    NotificationChannel,
    Rule,
)
from notifications.triggers import TRIGGERS
from releases import audit
from releases.actors import Actor
from releases.errors import Conflict, DomainError, NotFound
from releases.governance import policy
from releases.models import Channel

LINK_CODE_TTL = timedelta(minutes=10)
LINK_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud, typed in Slack
# what a dead letter is: out of attempts or refused for good, or dropped when its channel was
# disabled (the outbox writes these two reasons); the dead-letter view lists them, retry resends
DEAD = Q(status=DeliveryStatus.FAILED) | Q(
    status=DeliveryStatus.SKIPPED, last_error__startswith="the channel "
)


class InvalidSettings(DomainError):
    """A channel or rule whose values are wrong, listed by path in ``details.errors`` (422, the
    API's ``InvalidInput`` code)."""

    code, status = "invalid_request", 422


def _ts(value):
    return value.isoformat() if value else None


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


def rule_dict(r: Rule) -> dict:
    return {
        "id": r.pk,
        "channel": r.channel_id,
        "events": r.events,
        "services": r.services,
        "environments": r.environments,
        "enabled": r.enabled,
    }


def link_dict(link: ChatUser) -> dict:
    return {
        "id": link.pk,
        "team_id": link.team_id,
        "slack_user_id": link.slack_user_id,
        "username": link.user.get_username(),
        "how": link.how,
    }


def _summary(errors: list[dict], what: str) -> str:
    first = errors[0]
    where = f" at {first['path']}" if first["path"] else ""
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{what}{where}: {first['message']}{more}."


def check_channel(kind: str, config: dict, values: dict) -> None:
    for name, value in values.items():
        if isinstance(value, dict) and set(value) != {"env"}:
            raise InvalidSettings(
                f'The secret {name} must be a string or {{"env": NAME}}.',
                details={"errors": [{"path": f"secrets.{name}", "message": "is invalid"}]},
            )
    errors = [
        {"path": path, "message": message}
        for path, message in registry.validate(kind, config, secrets.for_validation(values))
    ]
    if errors:
        raise InvalidSettings(
            _summary(errors, "The channel is invalid"), details={"errors": errors}
        )


def check_events(events: list[str]) -> None:
    errors = [
        {"path": f"events[{i}]", "message": f"is not a moment: use one of {', '.join(TRIGGERS)}"}
        for i, e in enumerate(events)
        if e not in TRIGGERS
    ]
    if errors:
        raise InvalidSettings(_summary(errors, "The rule is invalid"), details={"errors": errors})


# --- channels ---------------------------------------------------------------------------------


def create_channel(
    actor: Actor, *, name: str, kind: str, config: dict, values: dict, enabled: bool = True
) -> NotificationChannel:
    policy.require(actor, "notification_channel.create")
    check_channel(kind, config, values)
    try:
        with transaction.atomic():
            channel = NotificationChannel.objects.create(
                name=name,
                kind=kind,
                config=config,
                secrets=secrets.seal(values),
                enabled=enabled,
                created_by=actor.user,
            )
            audit.record(actor, "notifications.channel_create", channel, channel_dict(channel))
    except IntegrityError:
        raise Conflict(f"A channel named {name!r} exists already.") from None
    return channel


def update_channel(
    actor: Actor,
    channel: NotificationChannel,
    *,
    name: str | None = None,
    config: dict | None = None,
    values: dict | None = None,
    enabled: bool | None = None,
) -> NotificationChannel:
    """``values`` are merged into the stored secrets (None removes one, a secret not named is
    kept); ``enabled=True`` re-enables a channel a permanent error disabled."""
    policy.require(actor, "notification_channel.update")
    before = channel_dict(channel)
    try:
        merged = secrets.stored(channel.secrets)
    except secrets.SecretError as exc:  # the key changed since: only new secrets can help
        if not values:
            raise InvalidSettings(
                f"The channel's secrets cannot be read ({exc}): give them again.",
                details={"errors": [{"path": "secrets", "message": "cannot be decrypted"}]},
            ) from None
        merged = {}
    for key, value in (values or {}).items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    config = channel.config if config is None else config
    check_channel(channel.kind, config, merged)
    try:
        with transaction.atomic():
            channel.config = config
            channel.secrets = secrets.seal(merged)
            if name is not None:
                channel.name = name
            if enabled is not None:
                channel.enabled = enabled
                if enabled:
                    channel.disabled_reason, channel.disabled_at = "", None
            channel.save()
            audit.record(
                actor,
                "notifications.channel_update",
                channel,
                channel_dict(channel),
                before=before,
            )
    except IntegrityError:
        raise Conflict(f"A channel named {name!r} exists already.") from None
    return channel


def delete_channel(actor: Actor, channel: NotificationChannel) -> None:
    policy.require(actor, "notification_channel.delete")
    with transaction.atomic():
        audit.record(actor, "notifications.channel_delete", channel, before=channel_dict(channel))
        channel.delete()


def send_test(actor: Actor, channel: NotificationChannel) -> Delivery:
    policy.require(actor, "notification_channel.update")
    if not channel.enabled:
        raise Conflict(
            f"The channel {channel.name!r} is disabled ({channel.disabled_reason or 'by hand'}): "
            "fix it and enable it first."
        )
    return outbox.send_test(channel, actor)


# --- rules ------------------------------------------------------------------------------------


def create_rule(
    actor: Actor,
    channel: NotificationChannel,
    *,
    events: list[str],
    services: list[str],
    environments: list[str],
    enabled: bool = True,
) -> Rule:
    policy.require(actor, "notification_channel.update")
    check_events(events)
    with transaction.atomic():
        rule = Rule.objects.create(
            channel=channel,
            events=events,
            services=services,
            environments=environments,
            enabled=enabled,
        )
        audit.record(actor, "notifications.rule_create", rule, rule_dict(rule))
    return rule


def delete_rule(actor: Actor, rule: Rule) -> None:
    policy.require(actor, "notification_channel.update")
    with transaction.atomic():
        audit.record(actor, "notifications.rule_delete", rule, before=rule_dict(rule))
        rule.delete()


# --- dead letters -----------------------------------------------------------------------------


def dead_letters(channel: NotificationChannel):
    return Delivery.objects.filter(DEAD, channel=channel).order_by("-id")


def retry_delivery(actor: Actor, delivery: Delivery) -> Delivery:
    """Send a dead letter again, from its first attempt (the channel must be enabled)."""
    policy.require(actor, "notification_channel.update")
    channel = delivery.channel
    if not channel.enabled:
        raise Conflict(
            f"The channel {channel.name!r} is disabled ({channel.disabled_reason or 'by hand'}): "
            "fix it and enable it before retrying its deliveries."
        )
    with transaction.atomic():
        changed = Delivery.objects.filter(DEAD, pk=delivery.pk).update(
            status=DeliveryStatus.PENDING,
            attempts=0,
            next_attempt_at=timezone.now(),
            lease_until=None,
        )
        if not changed:
            raise Conflict(
                f"Delivery {delivery.pk} is {delivery.status}, not a dead letter: only failed "
                "deliveries (or those dropped when the channel was disabled) are retried."
            )
        audit.record(
            actor,
            "notifications.delivery_retry",
            channel,
            {
                "delivery": delivery.pk,
                "trigger": delivery.trigger,
                "was": delivery.status,
                "last_error": delivery.last_error[:500],
            },
        )
        transaction.on_commit(lambda: outbox.enqueue_delivery(delivery.pk))
    delivery.refresh_from_db()
    return delivery


# --- Slack user links -------------------------------------------------------------------------


def link_slack_user(
    actor: Actor, *, team_id: str, slack_user_id: str, user, how: str = "explicit"
) -> ChatUser:
    """An admin links anyone; a user links themselves."""
    if user is None or actor.user is None or user.pk != actor.user.pk:
        policy.require(actor, "chat_user.create")
    if user is None:
        raise NotFound("There is no such user.")
    try:
        with transaction.atomic():
            link = ChatUser.objects.create(
                team_id=team_id,
                slack_user_id=slack_user_id,
                user=user,
                how=how,
                linked_by=actor.user.get_username() if actor.user else actor.name,
            )
            audit.record(actor, "notifications.slack_link", link, link_dict(link))
    except IntegrityError:
        raise Conflict(f"Slack user {slack_user_id} is linked already.") from None
    return link


def unlink_slack_user(actor: Actor, link: ChatUser) -> None:
    if actor.user is None or link.user_id != actor.user.pk:
        policy.require(actor, "chat_user.delete")
    with transaction.atomic():
        audit.record(actor, "notifications.slack_unlink", link, before=link_dict(link))
        link.delete()


def _digest(code: str) -> str:
    return hashlib.sha256(code.strip().upper().replace("-", "").encode()).hexdigest()


def issue_link_code(actor: Actor) -> str:
    """A one-time code (10 minutes) the signed-in user types in Slack as ``/switchyard link
    <code>`` to link that Slack account to theirs. Only its hash is kept; a new code replaces
    the user's unused ones."""
    if actor.user is None:
        raise NotFound("Sign in first.")
    raw = "".join(random.choice(LINK_CODE_ALPHABET) for _ in range(8))
    code = f"{raw[:4]}-{raw[4:]}"
    now = timezone.now()
    with transaction.atomic():
        LinkCode.objects.filter(user=actor.user, used_at__isnull=True).delete()
        LinkCode.objects.create(
            user=actor.user, digest=_digest(code), expires_at=now + LINK_CODE_TTL
        )
        audit.record(
            actor,
            "notifications.slack_link_code",
            None,
            {"expires_in_minutes": int(LINK_CODE_TTL.total_seconds() // 60)},
            object_type="chat_user",
            object_id=str(actor.user.pk),
        )
    return code


def redeem_link_code(team_id: str, slack_user_id: str, code: str, slack_name: str = "") -> str:
    """``/switchyard link <code>``: link the Slack user to the code's user, once. Returns the
    answer to show in Slack (refusals too: no such code, expired, used, already linked)."""
    now = timezone.now()
    with transaction.atomic():
        row = (
            LinkCode.objects.select_for_update()
            .select_related("user")
            .filter(digest=_digest(code))
            .first()
        )
        if (
            row is None
            or row.used_at is not None
            or row.expires_at <= now
            or not row.user.is_active
        ):
            return (
                ":no_entry: That link code is unknown, used or expired: get a new one on the "
                "Notifications page (codes last 10 minutes and work once)."
            )
        existing = (
            ChatUser.objects.select_related("user")
            .filter(team_id=team_id, slack_user_id=slack_user_id)
            .first()
        )
        if existing is not None:
            return (
                f":no_entry: This Slack account already acts as {existing.user.get_username()}: "
                "remove that link on the Notifications page first."
            )
        row.used_at = now
        row.save(update_fields=["used_at"])
        link = ChatUser.objects.create(
            team_id=team_id,
            slack_user_id=slack_user_id,
            user=row.user,
            how="link_code",
            linked_by=row.user.get_username(),
        )
        who = f"slack {slack_name or slack_user_id}"
        actor = Actor(user=row.user, channel=Channel.CHAT, via=who)
        audit.record(actor, "notifications.slack_link", link, link_dict(link))
    return f"Linked: in Switchyard you are now {row.user.get_username()}."
