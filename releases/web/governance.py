"""Governance on the dashboard: the approvals section of a deployment page (and what the approve
and reject buttons say), and the API tokens page (create, see, revoke).

Decisions come from ``releases.governance.policy``; changes go through ``releases.actions`` and
``releases.governance.tokens``.
"""

from __future__ import annotations

from datetime import timedelta

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from releases.actors import Actor
from releases.errors import Conflict, DomainError
from releases.governance import approvals, freezes, policy, tokens
from releases.models import ApiToken, Channel, Deployment, Environment, Service

# --- the approve / reject buttons --------------------------------------------------------------


def gate_reason(d: Deployment, label: str) -> str:
    """Why approve/reject is off for the deployment's state ("" while a gate waits)."""
    try:
        approvals.open_gate(d)
    except Conflict:
        return f"{label} needs the deployment to be awaiting approval (or at a gated step)."
    return ""


def approval_confirm(d: Deployment, name: str) -> str:
    service, env, new = d.target.service.slug, d.target.environment.slug, d.release.version
    gate = d.step_index if d.state != "awaiting_approval" else None
    what = f"step {gate + 1} of " if gate is not None else ""
    if name == "approve":
        return f"Approve {what}the rollout of {service} {new} to {env}?"
    return f"Reject {what}the rollout of {service} {new} to {env}? The deployment ends."


# --- the approvals section of a deployment page ---------------------------------------------------


def governance_context(d: Deployment) -> dict:
    """What the deployment page shows about approvals, overrides and freezes."""
    pol = approvals.policy_for(d.target.environment)
    now = timezone.now()
    given = list(d.approvals.select_related("user").order_by("id"))
    for a in given:
        a.expired = a.is_expired(now)
    frozen = freezes.active_freeze(d.target, now) if d.is_active else None
    return {
        "approval_policy": pol,
        "approval_status": approvals.approval_status(d, now=now),
        "approvals": given,
        "freeze_overrides": list(d.freeze_overrides.order_by("id")),
        "freeze": frozen,
    }


# --- API tokens -----------------------------------------------------------------------------------

EXPIRY_DAYS = {"7": "7 days", "30": "30 days", "90": "90 days", "365": "a year", "": "never"}


def _visible_tokens(user):
    rows = ApiToken.objects.select_related("user").order_by("-created_at")
    return rows if user.is_superuser else rows.filter(user=user)


@login_required
def tokens_page(request):
    """Your API tokens (a superuser sees everyone's): create one (its secret is shown once),
    see when and from where each was last used, revoke."""
    created = None
    if request.method == "POST":
        days = request.POST.get("expires_days", "90")
        expires_at = timezone.now() + timedelta(days=int(days)) if days.isdigit() else None
        try:
            row, secret = tokens.create(
                request.user,
                request.POST.get("name", ""),
                scopes=request.POST.getlist("scopes"),
                environments=request.POST.getlist("environments"),
                services=request.POST.getlist("services"),
                expires_at=expires_at,
                actor=Actor.from_request(request, channel=Channel.UI),
            )
        except DomainError as exc:
            messages.error(request, exc.message)
        else:
            created = {"row": row, "secret": secret}
    now = timezone.now()
    rows = list(_visible_tokens(request.user)[:200])
    for row in rows:
        row.status = tokens.status(row, now)
    return render(
        request,
        "releases/tokens.html",
        {
            "tokens": rows,
            "created": created,
            "scopes": tokens.SCOPES,
            "ci_scopes": tokens.CI_SCOPES,
            "environments": policy.visible(
                Environment.objects.all(), request.user, env="pk", service=None
            ),
            "services": policy.visible(Service.objects.all(), request.user, env=None, service="pk"),
            "expiry": EXPIRY_DAYS,
        },
    )


@require_POST
@login_required
def token_revoke(request, prefix: str):
    row = _visible_tokens(request.user).filter(prefix=prefix).first()
    if row is None:
        raise Http404("No such token.")
    tokens.revoke(row.prefix, actor=Actor.from_request(request, channel=Channel.UI))
    messages.success(request, f"Revoked {tokens.display(row)}: it is refused from now on.")
    return redirect("tokens")
