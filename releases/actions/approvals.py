"""Approve and reject: a deployment waiting for approvals to start, or a canary step's gate.
``releases.governance`` decides who may and how many are needed; these record the decision."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from releases import audit
from releases.actions.common import enqueue_tick, locked, record_event, save_checked
from releases.actions.start import freeze_check, record_override
from releases.actors import Actor
from releases.errors import (
    ApprovalRequired,
    Conflict,
)
from releases.governance import approvals, policy
from releases.live import events
from releases.models import (
    Approval,
    Deployment,
    FreezeOverride,
    State,
)
from releases.models.governance import Decision

# --- approvals (releases.governance.policy decides; these record) ---------------------------------


def check_step_gates(d: Deployment, *, full: bool) -> None:
    """A promote may not skip a canary step gate that has not been approved (a full promote may
    skip none of the gates ahead)."""
    steps = (d.strategy or {}).get("steps") or []
    indexes = range(d.step_index, max(len(steps), d.step_index + 1)) if full else [d.step_index]
    for index in indexes:
        if approvals.requires_step_approval(d, index) and not approvals.step_approved(d, index):
            status = approvals.approval_status(d, index)
            raise ApprovalRequired(
                f"Cannot promote deployment {d.pk}: step {index + 1} waits for an approval "
                f"({status.summary()}); an approver must approve it first.",
                details={"step": index, "required": status.required},
            )


def approve(
    actor: Actor, deployment_id: int, *, comment: str = "", override_freeze: str | None = None
) -> Deployment:
    """Approve a deployment awaiting approval, or the canary step gate it waits at.

    Needs the policy's approver role (default: approver) and, unless the policy allows it,
    someone other than who started it. Each person counts once, while their approval has not
    expired. With enough approvals an awaiting deployment goes ``pending`` and a tick is
    enqueued -- unless a freeze is in force, which raises Frozen (an admin may approve with
    ``override_freeze``); an approved step gate lets the next tick run the step."""
    comment = (comment or "").strip()
    with transaction.atomic():
        d = locked(deployment_id)
        policy.require(actor, "deployment.view", d)
        gate = approvals.open_gate(d)
        role = policy.check_approver(actor, d)  # the role, four eyes
        now = timezone.now()
        mine = Approval.objects.filter(
            deployment=d, step_index=gate, user=actor.user, decision=Decision.APPROVE
        )
        if any(not a.is_expired(now) for a in mine):
            raise Conflict(
                f"You have already approved deployment {d.pk}; another approver is needed.",
                details={"deployment": d.pk},
            )
        ttl = approvals.policy_for(d.target.environment).approval_ttl
        Approval.objects.create(
            deployment=d,
            user=actor.user,
            actor_name=actor.name[:150],
            decision=Decision.APPROVE,
            comment=comment,
            step_index=gate,
            role=role,
            channel=actor.channel,
            created_at=now,
            expires_at=now + ttl if ttl else None,
        )
        status = approvals.approval_status(d, gate, now)
        where = "" if gate is None else f" step {gate + 1}"
        created = [
            record_event(
                d,
                "approval",
                f"{actor.name} approved{where} ({status.summary()})"
                + (f": {comment}" if comment else ""),
                actor,
                {"decision": "approve", "step": gate, "comment": comment},
            )
        ]
        audit.record(
            actor,
            "deployment.approve",
            d,
            {
                "comment": comment,
                "step": gate,
                "approved_by": status.approved_by,
                "required": status.required,
            },
        )
        if status.satisfied and gate is None:
            if not FreezeOverride.objects.filter(deployment=d).exists():
                overriding = freeze_check(actor, d.target, override_freeze)
                if overriding:
                    created.append(record_override(actor, d, overriding, override_freeze))
            save_checked(d, state=State.PENDING, next_tick_at=now)
            created.append(
                record_event(d, "state", "approved: the rollout starts", actor, {"state": d.state})
            )
            enqueue_tick(d.pk)
        elif status.satisfied:
            save_checked(d, next_tick_at=now)
            created.append(
                record_event(
                    d, "approval", f"step {gate + 1} approved: the rollout continues", actor
                )
            )
            enqueue_tick(d.pk)
        events.publish_deployment(d.pk, [e.pk for e in created])
    return d


def reject(actor: Actor, deployment_id: int, *, comment: str = "") -> Deployment:
    """Reject a deployment awaiting approval (it ends ``rejected`` at once), or the canary step
    gate it waits at (traffic goes back to the stable release, then it ends ``rejected``)."""
    comment = (comment or "").strip()
    with transaction.atomic():
        d = locked(deployment_id)
        policy.require(actor, "deployment.view", d)
        gate = approvals.open_gate(d)
        policy.require(actor, "deployment.reject", d)
        now = timezone.now()
        Approval.objects.create(
            deployment=d,
            user=actor.user,
            actor_name=actor.name[:150],
            decision=Decision.REJECT,
            comment=comment,
            step_index=gate,
            role=policy.role_for(actor.user, d) or "" if actor.user else "",
            channel=actor.channel,
            created_at=now,
        )
        audit.record(actor, "deployment.reject", d, {"comment": comment, "step": gate})
        said = f": {comment}" if comment else ""
        if gate is None:
            save_checked(d, state=State.REJECTED, finished_at=now, intent="")
            message = f"{actor.name} rejected the deployment{said}"
        else:
            save_checked(
                d,
                state=State.ROLLING_BACK,
                rollback_outcome=State.REJECTED,
                intent="",
                next_tick_at=now,
            )
            message = (
                f"{actor.name} rejected step {gate + 1}{said}: sending traffic back to the "
                "stable release"
            )
            enqueue_tick(d.pk, priority=True)
        event = record_event(
            d, "state", message, actor, {"state": d.state, "comment": comment, "step": gate}
        )
        events.publish_deployment(d.pk, [event.pk])
    return d
