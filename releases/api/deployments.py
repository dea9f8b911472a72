"""API: deployments (start, list, status, operator commands), their time line, and strategy
validation. Every state change goes through ``releases.actions``; these views only translate
HTTP to commands and back.
"""

from __future__ import annotations

from django.http import HttpResponse
from ninja import Header, Query, Router

from integrations import registry
from releases import actions
from releases.api.auth import actor_for, authorize, visible
from releases.api.common import ERRORS, InvalidInput, answer, get_environment, get_service
from releases.api.schemas import (
    ApprovalIn,
    DeploymentIn,
    DeploymentOut,
    DeploymentPage,
    EventPage,
    PromoteIn,
    ReasonIn,
    StrategyIn,
    StrategyOut,
)
from releases.errors import NotFound
from releases.governance import approvals
from releases.live.presenters import deployment_view, event_dict, page_links
from releases.live.rows import deployment_rows
from releases.models import (
    ACTIVE_STATES,
    Deployment,
    DeploymentEvent,
    Environment,
    Service,
    State,
    Target,
)
from strategies.spec import describe_steps

router = Router()
ACCEPTED = {202: DeploymentOut, **ERRORS}
MAX_ID = 2**63 - 1
IDEMPOTENCY_KEY_MAX = 200


def _deployments():
    return Deployment.objects.select_related(
        "target__service", "target__environment", "release", "from_release", "created_by"
    )


def get_deployment(deployment_id: int) -> Deployment:
    """The deployment, with every column and relation, or NotFound."""
    deployment = _deployments().filter(pk=deployment_id).first()
    if deployment is None:
        raise _no_deployment(deployment_id)
    return deployment


def _no_deployment(deployment_id: int) -> NotFound:
    return NotFound(
        f"There is no deployment {deployment_id}.", details={"deployment": deployment_id}
    )


def _row(deployment_id: int) -> dict:
    """The deployment as ``deployment_view`` reads it (``releases.live.rows``), or NotFound."""
    row = deployment_rows([deployment_id]).get(deployment_id)
    if row is None:
        raise _no_deployment(deployment_id)
    return row


def _in_scope(row: dict) -> Deployment:
    """An unsaved deployment carrying what ``authorize`` reads of it (``policy.scope_of``: its
    id, its target's service and environment), from its row."""
    target = Target(
        service=Service(pk=row["target__service"], slug=row["target__service__slug"]),
        environment=Environment(
            pk=row["target__environment"], slug=row["target__environment__slug"]
        ),
    )
    return Deployment(pk=row["id"], target=target)


def _shown(deployment_id: int, status: int) -> HttpResponse:
    """The deployment as the database now has it, answered with ``status``."""
    return answer(deployment_view(_row(deployment_id)), status)


def _recorded(deployment: Deployment) -> HttpResponse:
    """202 with the deployment as the database now has it."""
    return _shown(deployment.pk, 202)


# --- deployments ------------------------------------------------------------------------------


@router.post(
    "/deployments",
    response={200: DeploymentOut, 201: DeploymentOut, **ERRORS},
    tags=["deployments"],
)
def create_deployment(
    request,
    payload: DeploymentIn,
    idempotency_key: str | None = Header(
        None,
        alias="Idempotency-Key",
        description="repeat a request safely: the same key on the same target returns the "
        "first deployment (200) instead of starting another",
    ),
):
    """Start deploying ``version`` to the service in the environment: 201 with the deployment.
    With an ``Idempotency-Key`` already used on this target: 200 with that earlier deployment.
    409 ``conflict`` while another deployment is active on the target (``details.active_deployment``
    names it), 409 ``already_live`` for the version already live there unless ``redeploy`` is
    true; 422 ``invalid_spec`` for a bad strategy (``details.errors[*].path``)."""
    service, environment = get_service(payload.service), get_environment(payload.environment)
    # where it would deploy (actions.start_deployment finds the target, or says there is none)
    authorize(request, "deployment.create", Target(service=service, environment=environment))
    key = (idempotency_key or "").strip()
    if len(key) > IDEMPOTENCY_KEY_MAX:
        raise InvalidInput(
            f"The Idempotency-Key header is too long (at most {IDEMPOTENCY_KEY_MAX} characters).",
            details={"errors": [{"path": "Idempotency-Key", "message": "is too long"}]},
        )
    if not key.isprintable():
        raise InvalidInput(
            "The Idempotency-Key header may hold printable characters only.",
            details={"errors": [{"path": "Idempotency-Key", "message": "is not printable"}]},
        )
    deployment, created = actions.start_deployment(
        actor_for(request),
        service=service,
        environment=environment,
        version=payload.version,
        strategy=payload.strategy,
        reason=payload.reason,
        idempotency_key=key,
        override_freeze=payload.override_freeze,
        redeploy=payload.redeploy,
    )
    return _shown(deployment.pk, 201 if created else 200)


@router.get("/deployments", response={200: DeploymentPage, **ERRORS}, tags=["deployments"])
def list_deployments(
    request,
    service: str | None = Query(None, max_length=63, description="a service's slug"),
    environment: str | None = Query(None, max_length=63, description="an environment's slug"),
    state: State | None = Query(None, description="only deployments in this state"),
    active: bool | None = Query(None, description="only active (or only finished) ones"),
    limit: int = Query(50, ge=1, le=200),
    before: int | None = Query(None, ge=0, le=MAX_ID, description="the previous page's next"),
):
    """Newest first, cursor-paginated: pass ``next`` back as ``before``."""
    authorize(request, "deployment.view")
    rows = visible(request, _deployments(), env="target__environment", service="target__service")
    if service:
        rows = rows.filter(target__service__slug=service)
    if environment:
        rows = rows.filter(target__environment__slug=environment)
    if state:
        rows = rows.filter(state=state)
    if active is not None:
        rows = (
            rows.filter(state__in=ACTIVE_STATES)
            if active
            else rows.exclude(state__in=ACTIVE_STATES)
        )
    if before is not None:
        rows = rows.filter(pk__lt=before)
    # the page's ids first (the target_id index, a top-N sort of ids), then only those rows with
    # their joins: joining every matching row to its releases and target, then sorting the wide
    # rows, was the list's cost with a long history (docs/serving.md has both plans); the rows
    # as plain dicts (``releases.live.rows``), no model instances
    ids = list(rows.order_by("-id").values_list("pk", flat=True)[: limit + 1])
    found = deployment_rows(ids)
    page = [found[pk] for pk in ids if pk in found]
    more = len(page) > limit
    page = page[:limit]
    link = page_links("deployment")
    return answer(
        {
            "items": [deployment_view(row, link) for row in page],
            "next": page[-1]["id"] if more else None,
        }
    )


@router.get("/deployments/{id}", response={200: DeploymentOut, **ERRORS}, tags=["deployments"])
def get_deployment_view(request, id: int):
    """Status: state, step, weights, versions, analysis, timestamps and links."""
    row = _row(id)
    authorize(request, "deployment.view", _in_scope(row))
    return answer(deployment_view(row))


# --- operator commands: recorded as intent, carried out by the next tick -----------------------


def _command(request, id: int, action: str) -> Deployment:
    """Check the deployment exists and the caller may act on it (404 before 403)."""
    deployment = get_deployment(id)
    authorize(request, f"deployment.{action}", deployment)
    return deployment


@router.post("/deployments/{id}/promote", response=ACCEPTED, tags=["operator commands"])
def promote(request, id: int, payload: PromoteIn | None = None):
    """Finish the current pause and go to the next step (``{"full": true}``: straight to 100%).
    Allowed while progressing or paused (a paused deployment resumes); else 409."""
    _command(request, id, "promote")
    full = bool(payload and payload.full)
    return _recorded(actions.promote(actor_for(request), id, full=full))


@router.post("/deployments/{id}/pause", response=ACCEPTED, tags=["operator commands"])
def pause(request, id: int):
    """Hold the rollout where it is. Allowed while pending or progressing; else 409."""
    _command(request, id, "pause")
    return _recorded(actions.pause(actor_for(request), id))


@router.post("/deployments/{id}/resume", response=ACCEPTED, tags=["operator commands"])
def resume(request, id: int):
    """Continue a paused rollout. Allowed while paused; else 409."""
    _command(request, id, "resume")
    return _recorded(actions.resume(actor_for(request), id))


@router.post("/deployments/{id}/abort", response=ACCEPTED, tags=["operator commands"])
def abort(request, id: int, payload: ReasonIn | None = None):
    """Stop and send every request back to the stable release; the deployment ends ``aborted``.
    Allowed while pending, awaiting approval, progressing or paused; else 409."""
    _command(request, id, "abort")
    reason = payload.reason if payload else ""
    return _recorded(actions.abort(actor_for(request), id, reason=reason))


@router.post("/deployments/{id}/rollback", response=ACCEPTED, tags=["operator commands"])
def rollback(request, id: int, payload: ReasonIn | None = None):
    """Roll back. An active deployment (pending, progressing, paused) returns to its stable
    release and ends ``rolled_back``: the answer is that deployment. A **succeeded** deployment
    is rolled back by starting a NEW deployment of the previous release: the answer is that new
    deployment (its ``rollback_of`` is this one's id) -- inside the rollback window a switch back
    to the previous release, still warm at 0% traffic; outside it a redeploy. 409 in other
    states."""
    _command(request, id, "rollback")
    reason = payload.reason if payload else ""
    return _recorded(actions.rollback(actor_for(request), id, reason=reason))


@router.post("/deployments/{id}/end-window", response=ACCEPTED, tags=["operator commands"])
def end_window(request, id: int, payload: ReasonIn | None = None):
    """End the **rollback window** of a succeeded deployment now: the previous release's warm
    slot is retired at once (its instances stop costing), and a rollback from then on redeploys
    the previous release. The target view's ``rollback_window`` shows what is held and until
    when. 409 when the deployment has no open window."""
    _command(request, id, "end_window")
    reason = payload.reason if payload else ""
    return _recorded(actions.end_window(actor_for(request), id, reason=reason))


@router.post(
    "/deployments/{id}/retry", response={201: DeploymentOut, **ERRORS}, tags=["operator commands"]
)
def retry(request, id: int, payload: ReasonIn | None = None):
    """Start a NEW deployment of the same release with the same strategy after this one was
    aborted, failed or rolled back: 201 with the new deployment. 409 in other states, or while
    another deployment is active on the target."""
    _command(request, id, "retry")
    reason = payload.reason if payload else ""
    new = actions.retry(actor_for(request), id, reason=reason)
    return _shown(new.pk, 201)


@router.post("/deployments/{id}/approve", response=ACCEPTED, tags=["operator commands"])
def approve(request, id: int, payload: ApprovalIn | None = None):
    """Approve a deployment ``awaiting_approval`` (or the canary step gate it waits at), with an
    optional ``comment``. With the approvals its environment's policy requires it goes
    ``pending`` and starts. 403 ``self_approval`` for your own deployment unless the policy
    allows it; 403 ``forbidden`` without the approver role; 409 ``conflict`` when nothing awaits
    an approval or you already approved; 409 ``frozen`` when the last approval would start it
    during a freeze (an admin may add ``override_freeze``: a written reason)."""
    _command(request, id, "approve")
    payload = payload or ApprovalIn()
    return _recorded(
        actions.approve(
            actor_for(request),
            id,
            comment=payload.comment,
            override_freeze=payload.override_freeze,
        )
    )


@router.post("/deployments/{id}/reject", response=ACCEPTED, tags=["operator commands"])
def reject(request, id: int, payload: ApprovalIn | None = None):
    """Reject a deployment ``awaiting_approval``: it ends ``rejected`` (at a canary step gate:
    traffic goes back to the stable release first). 409 when nothing awaits an approval."""
    _command(request, id, "reject")
    comment = payload.comment if payload else ""
    return _recorded(actions.reject(actor_for(request), id, comment=comment))


@router.get("/deployments/{id}/approvals", response={200: dict, **ERRORS}, tags=["deployments"])
def list_approvals(request, id: int):
    """Who approved or rejected (oldest first), what the environment's policy requires, and any
    freeze override an admin gave."""
    deployment = get_deployment(id)
    authorize(request, "deployment.view", deployment)
    return approvals_dict(deployment)


def approvals_dict(d: Deployment) -> dict:
    pol = approvals.policy_for(d.target.environment)
    status = approvals.approval_status(d)
    return {
        "policy": {
            "required_approvals": pol.required_approvals,
            "approver_role": pol.approver_role,
            "allow_self_approval": pol.allow_self_approval,
            "approval_ttl_seconds": int(pol.approval_ttl.total_seconds())
            if pol.approval_ttl
            else None,
            "step_approvals": pol.step_approvals or [],
        },
        "status": {
            "required": status.required,
            "approved_by": status.approved_by,
            "expired": status.expired,
            "rejected_by": status.rejected_by,
            "satisfied": status.satisfied,
        },
        "items": [
            {
                "id": a.pk,
                "by": a.actor_name,
                "decision": a.decision,
                "comment": a.comment,
                "step": a.step_index,
                "role": a.role,
                "channel": a.channel,
                "created_at": a.created_at.isoformat(),
                "expires_at": a.expires_at.isoformat() if a.expires_at else None,
                "expired": a.is_expired(),
            }
            for a in d.approvals.order_by("id")
        ],
        "freeze_overrides": [
            {
                "by": o.actor_name,
                "window": o.window_name,
                "reason": o.reason,
                "created_at": o.created_at.isoformat(),
            }
            for o in d.freeze_overrides.order_by("id")
        ],
    }


# --- the time line ----------------------------------------------------------------------------


@router.get("/deployments/{id}/events", response={200: EventPage, **ERRORS}, tags=["deployments"])
def list_events(
    request,
    id: int,
    after: int | None = Query(None, ge=0, le=MAX_ID, description="the last event id you have"),
    limit: int = Query(100, ge=1, le=500),
):
    """The time line, oldest first. ``next`` is the cursor for the following page (pass it as
    ``after``); null when this page reached the end -- to follow a live deployment, poll again
    with the last item's id."""
    deployment = get_deployment(id)
    authorize(request, "deployment.view", deployment)
    events = DeploymentEvent.objects.filter(deployment=deployment)
    if after is not None:
        events = events.filter(pk__gt=after)
    page = list(events.order_by("id")[: limit + 1])
    more = len(page) > limit
    page = page[:limit]
    return {"items": [event_dict(e) for e in page], "next": page[-1].pk if more else None}


# --- strategies -------------------------------------------------------------------------------


@router.post("/strategies/validate", response={200: StrategyOut, **ERRORS}, tags=["strategies"])
def validate_strategy(request, payload: StrategyIn):
    """Check a strategy spec (ours, Argo Rollouts' ``canary``/``blueGreen`` or a whole Rollout, or
    a Flagger Canary): the normalised
    spec and its planned steps, or 422 ``invalid_spec`` listing every error by path."""
    authorize(request, "strategy.validate")
    if payload.provider is not None and payload.provider not in registry.PROVIDERS:
        known = ", ".join(sorted(registry.PROVIDERS))
        raise InvalidInput(
            f"Unknown provider {payload.provider!r}: use one of {known}.",
            details={"errors": [{"path": "provider", "message": f"use one of {known}"}]},
        )
    spec = actions.validate_strategy(payload.strategy, provider=payload.provider)
    return {"strategy": spec, "steps": describe_steps(spec)}
