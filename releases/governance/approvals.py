"""What a deployment waits for: its environment's approval policy, how many approvals it has
and needs (to start, or to pass a canary step's gate), and the four-eyes rule (nobody approves
what they started). Decisions only; ``releases.actions.approvals`` records them."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from django.utils import timezone

from releases.errors import Conflict, Forbidden
from releases.models import (
    Approval,
    Deployment,
    EnvironmentPolicy,
    State,
    Target,
)
from releases.models.governance import Decision

logger = logging.getLogger(__name__)


# --- approvals --------------------------------------------------------------------------------

DEPLOYMENT_GATE = None  # Approval.step_index for the approval a deployment waits for to start


def policy_for(environment) -> EnvironmentPolicy:
    """The environment's policy, or the default (no approvals, no gates) when it has none."""
    found = EnvironmentPolicy.objects.filter(environment_id=environment.pk).first()
    return found or EnvironmentPolicy(environment=environment)


def needs_approval(target: Target, *, rollback: bool = False) -> bool:
    """Whether a new deployment to ``target`` waits in awaiting_approval. Rollbacks never do:
    the release they restore was already approved and live."""
    return not rollback and policy_for(target.environment).required_approvals > 0


@dataclass
class ApprovalStatus:
    required: int
    approved_by: list[str] = field(default_factory=list)
    expired: int = 0
    rejected_by: str | None = None

    @property
    def satisfied(self) -> bool:
        return self.rejected_by is None and len(self.approved_by) >= self.required

    @property
    def missing(self) -> int:
        return max(0, self.required - len(self.approved_by))

    def summary(self) -> str:
        text = f"{len(self.approved_by)} of {self.required} approvals"
        if self.expired:
            text += f" ({self.expired} expired)"
        return text


def approval_status(d: Deployment, step_index=DEPLOYMENT_GATE, now=None) -> ApprovalStatus:
    """Who has approved the gate (distinct people whose approval has not expired)."""
    now = now or timezone.now()
    pol = policy_for(d.target.environment)
    required = pol.required_approvals
    if step_index is not DEPLOYMENT_GATE:
        required = max(1, required)
    status = ApprovalStatus(required=required)
    seen = set()
    for a in Approval.objects.filter(deployment=d, step_index=step_index).order_by("id"):
        if a.decision == Decision.REJECT:
            status.rejected_by = a.actor_name
        elif a.is_expired(now):
            status.expired += 1
        elif (a.user_id or a.actor_name) not in seen:
            seen.add(a.user_id or a.actor_name)
            status.approved_by.append(a.actor_name)
    return status


def requires_step_approval(d: Deployment, step_index: int) -> bool:
    """Whether the environment's policy gates strategy step ``step_index`` (a manual judgment):
    the engine must not run that step until :func:`step_approved`. Rollbacks are never gated."""
    if d.rollback_of_id is not None:
        return False
    return step_index in (policy_for(d.target.environment).step_approvals or [])


def step_approved(d: Deployment, step_index: int, now=None) -> bool:
    return approval_status(d, step_index, now).satisfied


def step_gate_open(d: Deployment, step_index: int, now=None) -> bool:
    """For the reconcile loop: may step ``step_index`` run now? False while its gate waits."""
    return not requires_step_approval(d, step_index) or step_approved(d, step_index, now)


def open_gate(d: Deployment) -> int | None:
    """The gate an approve/reject of ``d`` now decides: DEPLOYMENT_GATE while it awaits
    approval, or the current step's index at an unapproved step gate; Conflict otherwise."""
    if d.state == State.AWAITING_APPROVAL:
        return DEPLOYMENT_GATE
    if d.state in (State.PROGRESSING, State.PAUSED) and requires_step_approval(d, d.step_index):
        if not step_approved(d, d.step_index):
            return d.step_index
    raise Conflict(
        f"Nothing awaits an approval on deployment {d.pk}: it is {d.state}.",
        details={"state": d.state},
    )


def gate_waits(d: Deployment) -> bool:
    """Whether an approval is awaited now (the deployment, or its current step)."""
    try:
        open_gate(d)
    except Conflict:
        return False
    return True


def refuse_self_approval(user, d: Deployment) -> None:
    """Four eyes: Forbidden (``self_approval``) when ``user`` started ``d`` and the policy does
    not allow approving one's own deployment."""
    if d.created_by_id is None or d.created_by_id != getattr(user, "pk", None):
        return
    pol = policy_for(d.target.environment)
    if not pol.allow_self_approval:
        raise Forbidden(
            f"You started deployment {d.pk}, and {d.target.environment.slug}'s policy needs "
            "someone else to approve it (four eyes).",
            details={"reason": "self_approval"},
            code="self_approval",
        )
