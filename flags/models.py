"""Flags and everything they are served with.

A ``Flag`` is defined once (key, type, kind of value); a ``FlagSetting`` says how it behaves in
one environment (on/off, strategies, variants, killed). Strategies and variants are stored in
Unleash's own format, validated by ``flags.validation``, so serving them is a copy. Every change
bumps the environment's ``Revision``: SDK endpoints compare it to decide whether their cached
document is current, and it is the ETag of the Unleash features document.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from releases.models import Environment


class FlagType(models.TextChoices):
    """Unleash's flag types, each with the lifetime it is expected to have (days; None: lives
    as long as the code path it guards)."""

    RELEASE = "release", "release"
    EXPERIMENT = "experiment", "experiment"
    OPERATIONAL = "operational", "operational"
    KILL_SWITCH = "kill-switch", "kill switch"
    PERMISSION = "permission", "permission"


EXPECTED_LIFETIME_DAYS = {
    FlagType.RELEASE: 40,
    FlagType.EXPERIMENT: 40,
    FlagType.OPERATIONAL: 7,
    FlagType.KILL_SWITCH: None,
    FlagType.PERMISSION: None,
}


class ValueKind(models.TextChoices):
    BOOLEAN = "boolean", "boolean"
    STRING = "string", "string"
    NUMBER = "number", "number"
    JSON = "json", "JSON"


class Flag(models.Model):
    key = models.CharField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    flag_type = models.CharField(max_length=16, choices=FlagType.choices, default=FlagType.RELEASE)
    kind = models.CharField(max_length=8, choices=ValueKind.choices, default=ValueKind.BOOLEAN)
    # served when the flag is off or no variant applies (non-boolean kinds)
    default_value = models.JSONField(null=True, blank=True)
    impression_data = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.CharField(max_length=150, blank=True)
    archived_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["key"]

    def __str__(self):
        return self.key


class FlagSetting(models.Model):
    """A flag in one environment."""

    flag = models.ForeignKey(Flag, on_delete=models.CASCADE, related_name="settings")
    environment = models.ForeignKey(Environment, on_delete=models.CASCADE, related_name="+")
    enabled = models.BooleanField(default=False)
    strategies = models.JSONField(default=list, blank=True)  # Unleash format, validated
    variants = models.JSONField(default=list, blank=True)  # Unleash format, weights sum to 1000
    killed_at = models.DateTimeField(null=True, blank=True)
    killed_by = models.CharField(max_length=150, blank=True)
    kill_reason = models.CharField(max_length=300, blank=True)
    # when it last changed what it serves (staleness: fully on or off since then)
    changed_at = models.DateTimeField(default=timezone.now)
    last_evaluated_at = models.DateTimeField(null=True, blank=True)
    version = models.PositiveIntegerField(default=1)  # optimistic lock for API writes

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["flag", "environment"], name="flag_setting_once")
        ]

    def __str__(self):
        return f"{self.flag.key} in {self.environment.slug}"

    @property
    def killed(self) -> bool:
        return self.killed_at is not None

    @property
    def serving(self) -> bool:
        """On as SDKs see it: enabled and not killed."""
        return self.enabled and not self.killed


class Segment(models.Model):
    """Reusable constraints (e.g. internal users), shared by strategies in every environment."""

    name = models.CharField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    constraints = models.JSONField(default=list, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class Revision(models.Model):
    """A counter per environment, bumped in the same transaction as any change to what the
    environment serves."""

    environment = models.OneToOneField(Environment, on_delete=models.CASCADE, related_name="+")
    number = models.BigIntegerField(default=1)

    def __str__(self):
        return f"{self.environment_id}@{self.number}"


class SdkToken(models.Model):
    """An SDK's credential for one environment: ``swyf_<prefix>_<secret>``, only a hash kept."""

    name = models.CharField(max_length=100)
    environment = models.ForeignKey(Environment, on_delete=models.CASCADE, related_name="+")
    prefix = models.CharField(max_length=16, unique=True)
    hashed = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.CharField(max_length=150, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.name} (swyf_{self.prefix}_…)"


class EvaluationCount(models.Model):
    """How often a flag was evaluated in an environment, per minute: from Unleash SDKs'
    metrics and from OFREP evaluations served here."""

    flag = models.ForeignKey(Flag, on_delete=models.CASCADE, related_name="+")
    environment = models.ForeignKey(Environment, on_delete=models.CASCADE, related_name="+")
    minute = models.DateTimeField()
    yes = models.BigIntegerField(default=0)
    no = models.BigIntegerField(default=0)
    variants = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["flag", "environment", "minute"], name="evaluation_count_once"
            )
        ]
        indexes = [models.Index(fields=["environment", "minute"], name="evaluation_env_minute")]

    def __str__(self):
        return f"{self.flag_id}@{self.environment_id} {self.minute:%H:%M}: {self.yes}/{self.no}"


class EvaluationTotal(models.Model):
    """Every evaluation of a flag in an environment since it was first counted: kept up to date
    where the minutes are counted (``flags.sdk.record``), so ``/metrics`` reads one row per flag
    and environment however long the history, and the per-minute rows can be pruned
    (``flags.sdk.prune_counts``) without a counter going backwards."""

    flag = models.ForeignKey(Flag, on_delete=models.CASCADE, related_name="+")
    environment = models.ForeignKey(Environment, on_delete=models.CASCADE, related_name="+")
    yes = models.BigIntegerField(default=0)
    no = models.BigIntegerField(default=0)
    variants = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["flag", "environment"], name="evaluation_total_once")
        ]

    def __str__(self):
        return f"{self.flag_id}@{self.environment_id}: {self.yes}/{self.no}"


class SdkInstance(models.Model):
    """An SDK that registered (``POST /api/client/register``)."""

    environment = models.ForeignKey(Environment, on_delete=models.CASCADE, related_name="+")
    app_name = models.CharField(max_length=200)
    instance_id = models.CharField(max_length=200)
    sdk_version = models.CharField(max_length=100, blank=True)
    strategies = models.JSONField(default=list, blank=True)
    interval_ms = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField(null=True, blank=True)
    last_seen_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["environment", "app_name", "instance_id"], name="sdk_instance_once"
            )
        ]

    def __str__(self):
        return f"{self.app_name} ({self.instance_id})"


class PlanState(models.TextChoices):
    ACTIVE = "active", "active"
    PAUSED = "paused", "paused"
    COMPLETED = "completed", "completed"
    ABORTED = "aborted", "aborted"


class RolloutPlan(models.Model):
    """Percentage steps for a flag in one environment (1 % -> 10 % -> 50 % -> 100 %), each held
    for its pause (or until promoted), like a canary's steps (``flags.plans``)."""

    flag = models.ForeignKey(Flag, on_delete=models.CASCADE, related_name="plans")
    environment = models.ForeignKey(Environment, on_delete=models.CASCADE, related_name="+")
    steps = models.JSONField()  # [{"percent": 1, "pause": 600 | None}], validated
    # a deployment the plan waits for before the flag's steps (deploy, then release): its canary
    # steps are the start of the plan's timeline
    deployment = models.ForeignKey(
        "releases.Deployment", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # the analysis of the current step when it is gated by one (``flags.analysis``): the bound
    # template, the judge's state and every measurement taken
    gate = models.JSONField(default=dict, blank=True)
    step_index = models.PositiveSmallIntegerField(default=0)
    state = models.CharField(max_length=16, choices=PlanState.choices, default=PlanState.ACTIVE)
    step_started_at = models.DateTimeField(default=timezone.now)
    message = models.CharField(max_length=300, blank=True)
    created_by = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["flag", "environment"],
                condition=models.Q(state__in=["active", "paused"]),
                name="one_open_plan_per_flag_environment",
            )
        ]

    def __str__(self):
        return f"plan for {self.flag_id} in {self.environment_id}: step {self.step_index}"

    @property
    def percent(self) -> int:
        return self.steps[self.step_index]["percent"]


class ExperimentState(models.TextChoices):
    RUNNING = "running", "running"
    STOPPED = "stopped", "stopped"


class Experiment(models.Model):
    """An A/B test on a flag's variants in one environment (``flags.experiments``): SDKs and
    services report exposures and conversions per variant; the result is judged by a
    sequential test whose running state is kept here, advanced one closed minute at a time."""

    flag = models.ForeignKey(Flag, on_delete=models.CASCADE, related_name="experiments")
    environment = models.ForeignKey(Environment, on_delete=models.CASCADE, related_name="+")
    control = models.CharField(max_length=100)  # the variant the others are compared with
    # the variants and their weights when it started: [{"name", "weight"}] (the SRM check's
    # expected shares)
    variants = models.JSONField()
    goal = models.CharField(max_length=100, blank=True)  # what a conversion is, in words
    alpha = models.FloatField(default=0.05)
    mde = models.FloatField(default=0.05)  # the smallest relative lift worth detecting
    state = models.CharField(
        max_length=16, choices=ExperimentState.choices, default=ExperimentState.RUNNING
    )
    started_at = models.DateTimeField(default=timezone.now)
    started_by = models.CharField(max_length=150, blank=True)
    stopped_at = models.DateTimeField(null=True, blank=True)
    # the sequential tests, per treatment: {"<variant>": {"up": {...}, "down": {...}}}
    sequential = models.JSONField(default=dict, blank=True)
    looked_until = models.DateTimeField(null=True, blank=True)  # minutes before it are counted
    # the first verdict each treatment reached: {"<variant>": {"verdict", "at"}}
    decided = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["flag", "environment"],
                condition=models.Q(state="running"),
                name="one_running_experiment_per_flag_environment",
            )
        ]

    def __str__(self):
        return f"experiment on {self.flag_id} in {self.environment_id}"


class ExperimentCount(models.Model):
    """Exposures and conversions of one variant of an experiment, per minute."""

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="counts")
    minute = models.DateTimeField()
    variant = models.CharField(max_length=100)
    exposures = models.BigIntegerField(default=0)
    conversions = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["experiment", "minute", "variant"], name="experiment_count_once"
            )
        ]

    def __str__(self):
        return f"{self.experiment_id} {self.variant} {self.minute:%H:%M}"
