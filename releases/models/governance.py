"""Governance: who may do what where (RoleBinding), what an environment requires before a
deployment runs (EnvironmentPolicy, Approval), when nothing may ship (FreezeWindow,
FreezeOverride), the audit chain's head, and failed sign-ins for throttling.

Decisions live in ``releases.governance.policy`` and ``releases.models.schedule``; these are the
rows they read.
Imported by ``releases.models`` (so Django registers them with the app).
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone

from releases.models import schedule


class Role(models.TextChoices):
    """Roles are ordered: each includes the ones before it (see ``releases.governance.policy``)."""

    VIEWER = "viewer", "viewer: sees"
    DEPLOYER = "deployer", "deployer: releases, deployments, promote/pause/resume/abort/rollback"
    APPROVER = "approver", "approver: also approves and rejects"
    ADMIN = "admin", "admin: also configures and overrides freezes"


class RoleBinding(models.Model):
    """A role granted to a user or a group (team), in one environment or all of them, for one
    service or all of them."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="role_bindings",
    )
    group = models.ForeignKey(
        "auth.Group",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="role_bindings",
        help_text="A team: every member holds the role.",
    )
    environment = models.ForeignKey(
        "releases.Environment",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="role_bindings",
        help_text="Empty: every environment.",
    )
    service = models.ForeignKey(
        "releases.Service",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="role_bindings",
        help_text="Empty: every service.",
    )
    role = models.CharField(max_length=16, choices=Role.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(user__isnull=False, group__isnull=True)
                | Q(user__isnull=True, group__isnull=False),
                name="rolebinding_user_xor_group",
            )
        ]
        indexes = [models.Index(fields=["user"], name="rolebinding_user")]

    def __str__(self):
        who = self.user.get_username() if self.user_id else f"team {self.group}"
        where = self.environment.slug if self.environment_id else "every environment"
        if self.service_id:
            where = f"{self.service.slug} in {where}"
        return f"{who}: {self.role} ({where})"


class EnvironmentPolicy(models.Model):
    """What a deployment to the environment needs before it runs."""

    environment = models.OneToOneField(
        "releases.Environment", on_delete=models.CASCADE, related_name="policy"
    )
    required_approvals = models.PositiveSmallIntegerField(
        default=0, help_text="0: deployments start at once (an unprotected environment)."
    )
    approver_role = models.CharField(
        max_length=16,
        choices=Role.choices,
        default=Role.APPROVER,
        help_text="The least role an approver must hold here.",
    )
    allow_self_approval = models.BooleanField(
        default=False, help_text="May the person who started a deployment approve it?"
    )
    approval_ttl = models.DurationField(
        null=True,
        blank=True,
        help_text="How long an approval counts (e.g. '04:00:00'); empty: until used.",
    )
    step_approvals = models.JSONField(
        default=list,
        blank=True,
        help_text="Indexes (from 0) of strategy steps that wait for an approval before they "
        "run: a manual judgment gate, e.g. [2] before a canary's third step.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "environment policies"

    def __str__(self):
        return f"policy for {self.environment}"

    def clean(self):
        steps = self.step_approvals
        if not isinstance(steps, list) or any(
            not isinstance(i, int) or isinstance(i, bool) or i < 0 for i in steps
        ):
            raise ValidationError({"step_approvals": "a list of step indexes (0, 1, 2, …)"})


class Decision(models.TextChoices):
    APPROVE = "approve"
    REJECT = "reject"


class Approval(models.Model):
    """A person's approve or reject on a deployment (``step_index`` None) or on one of its
    gated steps."""

    deployment = models.ForeignKey(
        "releases.Deployment", on_delete=models.CASCADE, related_name="approvals"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    actor_name = models.CharField(max_length=150)
    decision = models.CharField(max_length=8, choices=Decision.choices)
    comment = models.TextField(blank=True)
    step_index = models.IntegerField(null=True, blank=True)
    role = models.CharField(max_length=16, choices=Role.choices)
    channel = models.CharField(max_length=16)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["deployment", "step_index"], name="approval_gate")]

    def __str__(self):
        return f"{self.actor_name} {self.decision}d #{self.deployment_id}"

    def is_expired(self, now=None) -> bool:
        return self.expires_at is not None and self.expires_at <= (now or timezone.now())


class FreezeKind(models.TextChoices):
    ONE_OFF = schedule.ONE_OFF, "one-off (start, end)"
    WEEKLY = schedule.WEEKLY, "weekly (days and hours)"
    CRON = schedule.CRON, "cron expression"


class FreezeWindow(models.Model):
    """A time when new deployments and automatic promotions are blocked
    (``releases.models.schedule`` says when; rollbacks and aborts are never blocked)."""

    name = models.CharField(max_length=100)
    environment = models.ForeignKey(
        "releases.Environment", on_delete=models.CASCADE, related_name="freeze_windows"
    )
    service = models.ForeignKey(
        "releases.Service",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="freeze_windows",
        help_text="Empty: every service in the environment.",
    )
    reason = models.TextField()
    kind = models.CharField(max_length=16, choices=FreezeKind.choices, default=FreezeKind.ONE_OFF)
    starts_at = models.DateTimeField(null=True, blank=True, help_text="one-off")
    ends_at = models.DateTimeField(null=True, blank=True, help_text="one-off")
    weekdays = models.JSONField(
        default=list, blank=True, help_text="weekly: 0 = Monday … 6 = Sunday, e.g. [4]"
    )
    start_time = models.TimeField(null=True, blank=True, help_text="weekly, local time")
    end_time = models.TimeField(
        null=True, blank=True, help_text="weekly, local time; at or before the start: next day"
    )
    cron = models.CharField(max_length=100, blank=True, help_text="e.g. '* 16-23 * * FRI'")
    duration = models.DurationField(
        null=True, blank=True, help_text="cron: how long each match lasts; empty: the minute"
    )
    timezone = models.CharField(max_length=64, default="UTC", help_text="e.g. Europe/Paris")
    enabled = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["environment__order", "name"]

    def __str__(self):
        return self.name

    def clean(self):
        problems = schedule.validate(self)
        if problems:
            errors: dict[str, list[str]] = {}
            for field, message in problems:
                errors.setdefault(field, []).append(message)
            raise ValidationError(errors)

    @property
    def when(self) -> str:
        return schedule.describe(self)


class FreezeOverride(models.Model):
    """An admin started (or approved) a deployment during a freeze, with a written reason."""

    deployment = models.ForeignKey(
        "releases.Deployment", on_delete=models.CASCADE, related_name="freeze_overrides"
    )
    window = models.ForeignKey(FreezeWindow, null=True, blank=True, on_delete=models.SET_NULL)
    window_name = models.CharField(max_length=100)
    reason = models.TextField()
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    actor_name = models.CharField(max_length=150)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self):
        return f"{self.actor_name} overrode {self.window_name!r} for #{self.deployment_id}"


class LoginFailure(models.Model):
    """A failed sign-in: ``releases.governance.security`` refuses more attempts for a while
    after too many for one username from one address."""

    username = models.CharField(max_length=150)
    address = models.GenericIPAddressField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            models.Index(fields=["username", "address", "created_at"], name="loginfailure_key"),
            models.Index(fields=["address", "created_at"], name="loginfailure_address"),
        ]

    def __str__(self):
        return f"{self.username} from {self.address}"
