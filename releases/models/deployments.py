"""A deployment (one attempt to move a target to a new release with a strategy) and its time
line. ``State`` is the state machine of docs/architecture.md; at most one active deployment per
target is a partial unique constraint. Only ``releases.actions`` changes a deployment's state."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from releases.models.catalog import Channel, Release, Target


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
    # after it succeeded: until when the previous release's slot (``stable_slot``) is kept warm
    # at 0% traffic -- the rollback window; None: no window (closed, ended, or never opened)
    window_until = models.DateTimeField(null=True, blank=True)
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
    # fencing token: bumped by every claim and sent (with the id) with every routing/scale call,
    # so a target refuses a call from a worker whose lease passed to another since
    # (releases.reconcile.lease)
    lease_generation = models.PositiveBigIntegerField(default=0)
    # ticks in a row that failed with an unexpected error (reset by a tick that records)
    tick_failures = models.PositiveIntegerField(default=0)
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
