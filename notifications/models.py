"""Channels, rules, the delivery outbox, Slack messages kept per deployment, Slack user links."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from integrations.notify import registry


def kind_choices():
    return registry.kind_choices()


class NotificationChannel(models.Model):
    """Where notices go: a transport kind with its plain ``config`` and its ``secrets`` (a token,
    a webhook URL, a signing key), encrypted (``notifications.secrets``) or named environment
    variables; never shown back. A permanent delivery error disables it with the reason."""

    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=20, choices=kind_choices)
    config = models.JSONField(default=dict, blank=True)
    secrets = models.TextField(blank=True, help_text="Encrypted JSON (notifications.secrets).")
    enabled = models.BooleanField(default=True)
    disabled_reason = models.TextField(blank=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return f"{self.name} ({self.kind})"


class Rule(models.Model):
    """Which moments (``triggers.TRIGGERS``; empty: all) of which services and environments
    (slugs; empty: all) go to ``channel``."""

    channel = models.ForeignKey(NotificationChannel, on_delete=models.CASCADE, related_name="rules")
    events = models.JSONField(default=list, blank=True)
    services = models.JSONField(default=list, blank=True)
    environments = models.JSONField(default=list, blank=True)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self):
        return f"rule #{self.pk} -> {self.channel.name}"

    def matches(self, trigger: str, service: str, environment: str) -> bool:
        return (
            self.enabled
            and (not self.events or trigger in self.events)
            and (not self.services or service in self.services)
            and (not self.environments or environment in self.environments)
        )


class DeliveryStatus(models.TextChoices):
    PENDING = "pending"  # waiting for its (next) attempt
    SENDING = "sending"  # claimed by a worker until lease_until
    SENT = "sent"
    FAILED = "failed"  # permanent error, or out of attempts
    SKIPPED = "skipped"  # the channel was disabled, or the message was already up to date


class Placement(models.TextChoices):
    MESSAGE = "message"  # the deployment's one message (posted once, then updated), or a card
    REPLY = "reply"  # a thread reply under it (Slack), a message of its own elsewhere
    TEST = "test"  # "send a test message"


class Delivery(models.Model):
    """The outbox: one notice to one channel. Written before any network call, so nothing is
    lost when a transport (or the broker) is down; the sweep re-enqueues what is overdue."""

    channel = models.ForeignKey(
        NotificationChannel, on_delete=models.CASCADE, related_name="deliveries"
    )
    deployment = models.ForeignKey(
        "releases.Deployment", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    event_id = models.BigIntegerField(null=True, blank=True)  # the DeploymentEvent
    trigger = models.CharField(max_length=32)
    placement = models.CharField(max_length=10, choices=Placement.choices)
    status = models.CharField(
        max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    lease_until = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    event_at = models.DateTimeField(null=True, blank=True)  # when the event happened
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            # fan-out is safe to run twice
            models.UniqueConstraint(
                fields=["channel", "event_id", "placement"],
                condition=Q(event_id__isnull=False),
                name="one_delivery_per_event_channel_placement",
            )
        ]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="delivery_due"),
            models.Index(fields=["channel", "-id"], name="delivery_log"),
        ]

    def __str__(self):
        return f"{self.trigger} -> {self.channel.name}: {self.status}"


class FannedOut(models.Model):
    """A DeploymentEvent already fanned out (the sweep catches those whose task was lost)."""

    event_id = models.BigIntegerField(primary_key=True)
    at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return f"event {self.event_id} fanned out"


class SlackMessage(models.Model):
    """The one Slack message kept per deployment and channel (``chat.update`` needs its ``ts``).
    ``claimed_until``: a worker posting it now (so two never post two messages)."""

    channel = models.ForeignKey(NotificationChannel, on_delete=models.CASCADE, related_name="+")
    deployment = models.ForeignKey(
        "releases.Deployment", on_delete=models.CASCADE, related_name="+"
    )
    slack_channel = models.CharField(max_length=32, blank=True)
    ts = models.CharField(max_length=32, blank=True)
    claimed_until = models.DateTimeField(null=True, blank=True)
    digest = models.CharField(max_length=64, blank=True)  # of what Slack shows now
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["channel", "deployment"], name="one_message_per_deployment"
            )
        ]

    def __str__(self):
        return f"deployment {self.deployment_id} in {self.slack_channel or '?'} at {self.ts or '?'}"

    def ref(self) -> dict | None:
        return {"channel": self.slack_channel, "ts": self.ts} if self.ts else None


class ChatUser(models.Model):
    """A Slack user acting as a Switchyard user in chat-ops: linked explicitly (from the page,
    by an admin or by the user with the code the bot answered) or by a verified email."""

    team_id = models.CharField(max_length=32)
    slack_user_id = models.CharField(max_length=32)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="chat_identities"
    )
    how = models.CharField(max_length=20, default="explicit")  # explicit|link_code|verified_email
    linked_by = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["team_id", "slack_user_id"], name="one_link_per_slack_user"
            )
        ]

    def __str__(self):
        return f"{self.team_id}/{self.slack_user_id} -> {self.user}"


class LinkCode(models.Model):
    """A one-time code a signed-in user got on the Notifications page, redeemed in Slack with
    ``/switchyard link <code>`` to link that Slack account to theirs. Only its SHA-256 is kept."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    digest = models.CharField(max_length=64, unique=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return f"link code for {self.user} until {self.expires_at:%H:%M}"


class InboundNonce(models.Model):
    """Slack request signatures already seen: a replay inside the 5-minute window is refused."""

    signature = models.CharField(max_length=80, primary_key=True)
    at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return self.signature
