"""API: an environment's approval policy (required approvals, who may approve, step gates)."""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from ninja import Field, Router

from releases import audit
from releases.api.auth import actor_for, authorize
from releases.api.common import ERRORS, InvalidInput, get_environment
from releases.api.roles import RoleName
from releases.api.schemas import In, Out
from releases.governance import approvals
from releases.models import EnvironmentPolicy

router = Router()


class PolicyIn(In):
    required_approvals: int = Field(0, ge=0, le=20, description="0: no approval needed")
    approver_role: RoleName = Field("approver", description="the least role of an approver")
    allow_self_approval: bool = False
    approval_ttl_seconds: int | None = Field(
        None, ge=60, le=90 * 86400, description="how long an approval counts; null: until used"
    )
    step_approvals: list[int] = Field(
        [], description="indexes of strategy steps that wait for an approval (canary gates)"
    )


class PolicyOut(Out):
    environment: str
    required_approvals: int
    approver_role: str
    allow_self_approval: bool
    approval_ttl_seconds: int | None
    step_approvals: list[int]


def policy_dict(p: EnvironmentPolicy) -> dict:
    return {
        "environment": p.environment.slug,
        "required_approvals": p.required_approvals,
        "approver_role": p.approver_role,
        "allow_self_approval": p.allow_self_approval,
        "approval_ttl_seconds": int(p.approval_ttl.total_seconds()) if p.approval_ttl else None,
        "step_approvals": list(p.step_approvals or []),
    }


@router.get("/environments/{slug}/policy", response={200: PolicyOut, **ERRORS}, tags=["governance"])
def get_policy(request, slug: str):
    """What a deployment to the environment needs before it runs (defaults when none is set)."""
    environment = get_environment(slug)
    authorize(request, "environment.view", environment)
    return policy_dict(approvals.policy_for(environment))


@router.put("/environments/{slug}/policy", response={200: PolicyOut, **ERRORS}, tags=["governance"])
def put_policy(request, slug: str, payload: PolicyIn):
    """Set the environment's approval policy (admins of the environment)."""
    environment = get_environment(slug)
    authorize(request, "policy.update", environment)
    if any(i < 0 for i in payload.step_approvals):
        raise InvalidInput(
            "The request is invalid at step_approvals: step indexes start at 0.",
            details={"errors": [{"path": "step_approvals", "message": "must be 0 or more"}]},
        )
    fields = {
        "required_approvals": payload.required_approvals,
        "approver_role": payload.approver_role,
        "allow_self_approval": payload.allow_self_approval,
        "approval_ttl": timedelta(seconds=payload.approval_ttl_seconds)
        if payload.approval_ttl_seconds
        else None,
        "step_approvals": sorted(set(payload.step_approvals)),
    }
    with transaction.atomic():
        current = EnvironmentPolicy.objects.select_for_update().filter(environment=environment)
        row = current.first()
        before = policy_dict(row) if row else None
        row, _ = EnvironmentPolicy.objects.update_or_create(
            environment=environment, defaults=fields
        )
        after = policy_dict(row)
        if before != after:
            audit.record(actor_for(request), "policy.update", row, after, before=before)
    return after


# --- freeze windows ---------------------------------------------------------------------------
