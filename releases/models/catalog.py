"""The domain: services, environments, targets, releases, deployments and their time lines.

Only ``releases.commands`` (and the reconcile loop through it) changes a Deployment's state.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class Channel(models.TextChoices):
    UI = "ui", "dashboard"
    API = "api", "API"
    CHAT = "chat", "chat"
    SYSTEM = "system", "system"


class Service(models.Model):
    slug = models.SlugField(unique=True, max_length=63)
    name = models.CharField(max_length=200)
    repository = models.CharField(max_length=500, blank=True)
    team = models.CharField(max_length=100, blank=True)
    default_strategy = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["slug"]

    def __str__(self):
        return self.slug


class Environment(models.Model):
    slug = models.SlugField(unique=True, max_length=63)
    name = models.CharField(max_length=200)
    order = models.PositiveIntegerField(default=0, help_text="Position on the promotion path.")
    default_strategy = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["order", "slug"]

    def __str__(self):
        return self.slug


class Provider(models.TextChoices):
    LOCAL = "local", "local fleet"


class Target(models.Model):
    """A service placed in an environment, run by one integration."""

    service = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="targets")
    environment = models.ForeignKey(Environment, on_delete=models.PROTECT, related_name="targets")
    provider = models.CharField(max_length=32, choices=Provider.choices, default=Provider.LOCAL)
    config = models.JSONField(default=dict, blank=True)
    strategy = models.JSONField(default=dict, blank=True)
    stable_release = models.ForeignKey(
        "Release", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    stable_slot = models.CharField(max_length=32, default="blue")
    endpoint = models.CharField(max_length=200, blank=True)
    # the last slot status a tick observed: {"blue": {"version", "desired", "ready", "weight",
    # "instances": [...]}} -- web processes render this instead of calling the integration
    observed = models.JSONField(default=dict, blank=True)
    observed_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["service", "environment"], name="one_target_per_env")
        ]
        ordering = ["service__slug", "environment__order"]

    def __str__(self):
        return f"{self.service.slug} in {self.environment.slug}"

    @property
    def key(self) -> str:
        return f"{self.service.slug}.{self.environment.slug}"


class ImmutableError(Exception):
    pass


class Release(models.Model):
    """An immutable version of a service."""

    service = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="releases")
    version = models.CharField(max_length=128)
    artifact = models.JSONField(default=dict, blank=True)
    commit = models.CharField(max_length=64, blank=True)
    notes = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_via = models.CharField(max_length=16, choices=Channel.choices, default=Channel.API)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["service", "version"], name="unique_release_version")
        ]
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"{self.service.slug} {self.version}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise ImmutableError("a release is immutable: create a new version instead")
        super().save(*args, **kwargs)


class State(models.TextChoices):
    PENDING = "pending"
    AWAITING_APPROVAL = "awaiting_approval"
    PROGRESSING = "progressing"
    PAUSED = "paused"
    ROLLING_BACK = "rolling_back"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    ROLLED_BACK = "rolled_back"
    ABORTED = "aborted"
    REJECTED = "rejected"


ACTIVE_STATES = (
    State.PENDING,
    State.AWAITING_APPROVAL,
    State.PROGRESSING,
    State.PAUSED,
    State.ROLLING_BACK,
)
TERMINAL_STATES = (State.SUCCEEDED, State.FAILED, State.ROLLED_BACK, State.ABORTED, State.REJECTED)


class Deployment(models.Model):
    """One attempt to move a target from its stable release to ``release`` with a strategy."""

    target = models.ForeignKey(Target, on_delete=models.CASCADE, related_name="deployments")
    release = models.ForeignKey(Release, on_delete=models.PROTECT, related_name="deployments")
    from_release = models.ForeignKey(
        Release, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    rollback_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="rollbacks"
    )
    state = models.CharField(max_length=20, choices=State.choices, default=State.PENDING)
    strategy = models.JSONField(help_text="The normalised strategy spec, snapshotted at creation.")
    step_index = models.IntegerField(default=0)
    step = models.CharField(max_length=300, blank=True)
    progress = models.JSONField(default=dict, blank=True)
    weights = models.JSONField(default=dict, blank=True)  # {"stable": 95, "canary": 5}
    stable_slot = models.CharField(max_length=32)
    canary_slot = models.CharField(max_length=32)
    # operator intent not yet carried out by a tick: promote | promote_full
    intent = models.CharField(max_length=20, blank=True)
    # while rolling back: the state to end in (rolled_back | aborted | failed)
    rollback_outcome = models.CharField(max_length=20, blank=True)
    # results of checks the reconcile loop ran for the engine (e.g. blue-green smoke checks),
    # handed to the next tick's observation
    checks = models.JSONField(default=dict, blank=True)
    # after a terminal state: when to scale down a slot kept for inspection / instant rollback
    cleanup_at = models.DateTimeField(null=True, blank=True)
    reason = models.TextField(blank=True)
    message = models.TextField(blank=True)
    failure_reason = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_via = models.CharField(max_length=16, choices=Channel.choices, default=Channel.API)
    idempotency_key = models.CharField(max_length=200, blank=True)
    # optimistic locking: every write bumps it and checks the value it read
    version = models.PositiveIntegerField(default=1)
    # the reconcile loop's claim: one worker ticks a deployment at a time
    lease_owner = models.CharField(max_length=64, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    next_tick_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["target"],
                condition=Q(state__in=ACTIVE_STATES),
                name="one_active_deployment_per_target",
            ),
            models.UniqueConstraint(
                fields=["target", "idempotency_key"],
                condition=~Q(idempotency_key=""),
                name="unique_deployment_idempotency_key",
            ),
        ]
        indexes = [
            models.Index(fields=["state", "next_tick_at"], name="deployment_due"),
            # the board's "last succeeded deployment per target" and the newest-first lists
            models.Index(
                fields=["target", "state", "-finished_at"], name="deployment_target_state"
            ),
            models.Index(fields=["-created_at", "-id"], name="deployment_recent"),
        ]

    def __str__(self):
        return f"#{self.pk} {self.release} to {self.target.environment.slug}"

    @property
    def is_active(self) -> bool:
        return self.state in ACTIVE_STATES

    @property
    def strategy_kind(self) -> str:
        return (self.strategy or {}).get("kind", "")


class DeploymentEvent(models.Model):
    """The time line of a deployment: state changes, steps, weights, health, verdicts."""

    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=32)
    message = models.TextField()
    data = models.JSONField(default=dict, blank=True)
    actor = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["deployment", "id"], name="deployment_events")]

    def __str__(self):
        return f"{self.kind}: {self.message}"


class AuditEvent(models.Model):
    """Append-only record of every action, from every channel."""

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    actor_name = models.CharField(max_length=150)
    channel = models.CharField(max_length=16, choices=Channel.choices)
    action = models.CharField(max_length=64)
    object_type = models.CharField(max_length=64)
    object_id = models.CharField(max_length=64)
    object_repr = models.CharField(max_length=300, blank=True)
    data = models.JSONField(default=dict, blank=True)
    # for changes: the values before (``data`` holds the values after)
    before = models.JSONField(null=True, blank=True)
    source_address = models.GenericIPAddressField(null=True, blank=True)
    # set by releases.audit.record before the insert: it is part of the hashed content
    created_at = models.DateTimeField(default=timezone.now)
    # the hash chain (releases.audit): prev_hash is the previous row's hash, hash covers this
    # row's content and prev_hash. ``manage.py audit verify`` walks it.
    prev_hash = models.CharField(max_length=64, blank=True)
    hash = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["object_type", "object_id"], name="audit_object")]

    def __str__(self):
        return f"{self.actor_name} {self.action} {self.object_type}:{self.object_id}"

    def save(self, *args, **kwargs):
        # append-only: on Postgres a trigger also refuses UPDATE and DELETE (migration 0003)
        if not self._state.adding:
            raise ImmutableError("audit events are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ImmutableError("audit events are append-only")


class ApiToken(models.Model):
    """A bearer token: ``swy_<prefix>_<secret>``; only a hash of the whole token is stored."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True)
    hashed = models.CharField(max_length=64)
    scopes = models.JSONField(default=list, blank=True)
    # limits by slug (empty: no limit beyond the user's roles); see releases.tokens
    environments = models.JSONField(default=list, blank=True)
    services = models.JSONField(default=list, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    last_used_from = models.GenericIPAddressField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.name} (swy_{self.prefix}_…)"


# Governance (roles, approvals, freeze windows, the audit chain head) lives in its own module;
# importing it here registers its models with the app.
from releases.models_analysis import AnalysisRun, AnalysisTemplate, Measurement  # noqa: E402, F401
from releases.models_governance import (  # noqa: E402, F401
    Approval,
    AuditChainHead,
    EnvironmentPolicy,
    FreezeOverride,
    FreezeWindow,
    LoginFailure,
    Role,
    RoleBinding,
)
