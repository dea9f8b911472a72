"""API: governance configuration -- an environment's approval policy, freeze windows, and role
bindings. Each change needs the admin role where it applies (``releases.governance.policy``) and is
audited with the values before and after.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Literal

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone
from ninja import Field, Query, Router, Status
from ninja.responses import codes_4xx

from releases import audit
from releases.api.auth import actor_for, authorize, summarise, visible
from releases.api.catalog import InvalidInput, get_environment, get_service
from releases.api.schemas import REASON_MAX, ErrorOut, In, Out
from releases.errors import NotFound
from releases.governance import approvals
from releases.models import EnvironmentPolicy, FreezeWindow, Role, RoleBinding, schedule

router = Router()
ERRORS = {codes_4xx: ErrorOut}
RoleName = Literal["viewer", "deployer", "approver", "admin"]


def _ts(value):
    return value.astimezone(UTC).isoformat() if value else None


# --- approval policy --------------------------------------------------------------------------


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


class FreezeIn(In):
    name: str = Field(min_length=1, max_length=100, examples=["Year-end freeze"])
    environment: str = Field(min_length=1, max_length=63)
    service: str | None = Field(None, max_length=63, description="null: every service")
    reason: str = Field(min_length=1, max_length=REASON_MAX)
    kind: Literal["one_off", "weekly", "cron"] = "one_off"
    starts_at: datetime | None = Field(None, description="one-off; without an offset: local time")
    ends_at: datetime | None = None
    weekdays: list[int] = Field([], description="weekly: 0 = Monday … 6 = Sunday")
    start_time: time | None = Field(None, description="weekly, local time")
    end_time: time | None = Field(None, description="weekly; at or before the start: next day")
    cron: str = Field("", max_length=100, examples=["* 16-23 * * FRI"])
    duration_minutes: int | None = Field(None, ge=1, le=7 * 1440, description="cron")
    timezone: str = Field("UTC", max_length=64, examples=["Europe/Paris"])
    enabled: bool = True


class FreezePatchIn(In):
    reason: str | None = Field(None, min_length=1, max_length=REASON_MAX)
    enabled: bool | None = None
    ends_at: datetime | None = None


class FreezeOut(Out):
    id: int
    name: str
    environment: str
    service: str | None
    reason: str
    kind: str
    when: str
    enabled: bool
    active: bool
    until: str | None
    starts_at: str | None
    ends_at: str | None
    weekdays: list[int]
    start_time: str | None
    end_time: str | None
    cron: str
    duration_minutes: int | None
    timezone: str


class FreezeList(Out):
    items: list[FreezeOut]


def freeze_dict(w: FreezeWindow, now=None) -> dict:
    try:
        until = schedule.active_until(w, now or timezone.now()) if w.enabled else None
    except schedule.FreezeError:
        until = None
    return {
        "id": w.pk,
        "name": w.name,
        "environment": w.environment.slug,
        "service": w.service.slug if w.service_id else None,
        "reason": w.reason,
        "kind": w.kind,
        "when": w.when,
        "enabled": w.enabled,
        "active": until is not None,
        "until": _ts(until),
        "starts_at": _ts(w.starts_at),
        "ends_at": _ts(w.ends_at),
        "weekdays": w.weekdays,
        "start_time": w.start_time.isoformat() if w.start_time else None,
        "end_time": w.end_time.isoformat() if w.end_time else None,
        "cron": w.cron,
        "duration_minutes": int(w.duration.total_seconds() // 60) if w.duration else None,
        "timezone": w.timezone,
    }


def _aware(value: datetime | None, tz: str) -> datetime | None:
    if value is None or timezone.is_aware(value):
        return value
    try:
        return timezone.make_aware(value, schedule.zone(tz))
    except schedule.FreezeError:
        return timezone.make_aware(value, UTC)


def _check_window(w: FreezeWindow) -> None:
    problems = schedule.validate(w)
    if problems:
        errors = [{"path": field, "message": message} for field, message in problems]
        raise InvalidInput(
            summarise(errors, "The freeze window is invalid"), details={"errors": errors}
        )


def _freezes():
    return FreezeWindow.objects.select_related("environment", "service")


def get_freeze(request, freeze_id: int) -> FreezeWindow:
    w = _freezes().filter(pk=freeze_id).first()
    if w is None:
        raise NotFound(f"There is no freeze window {freeze_id}.", details={"freeze": freeze_id})
    authorize(request, "freeze.view", w)
    return w


@router.get("/freezes", response={200: FreezeList, **ERRORS}, tags=["governance"])
def list_freezes(
    request,
    environment: str | None = Query(None, max_length=63),
    service: str | None = Query(None, max_length=63),
    active: bool | None = Query(None, description="only windows in force now (or not)"),
):
    """Freeze windows, by environment; ``active`` and ``until`` say whether each is in force."""
    authorize(request, "freeze.view")
    rows = visible(request, _freezes(), env="environment", service=None)
    if environment:
        rows = rows.filter(environment__slug=environment)
    if service:
        rows = rows.filter(service__slug=service)
    now = timezone.now()
    items = [freeze_dict(w, now) for w in rows]
    if active is not None:
        items = [i for i in items if i["active"] is active]
    return {"items": items}


@router.post("/freezes", response={201: FreezeOut, **ERRORS}, tags=["governance"])
def create_freeze(request, payload: FreezeIn):
    """Create a freeze window (admins of the environment, or of the service there): new
    deployments and automatic promotions wait while it is in force; rollbacks never do."""
    environment = get_environment(payload.environment)
    service = get_service(payload.service) if payload.service else None
    w = FreezeWindow(
        name=payload.name,
        environment=environment,
        service=service,
        reason=payload.reason,
        kind=payload.kind,
        starts_at=_aware(payload.starts_at, payload.timezone),
        ends_at=_aware(payload.ends_at, payload.timezone),
        weekdays=payload.weekdays,
        start_time=payload.start_time,
        end_time=payload.end_time,
        cron=payload.cron,
        duration=timedelta(minutes=payload.duration_minutes) if payload.duration_minutes else None,
        timezone=payload.timezone,
        enabled=payload.enabled,
        created_by=request.user,
    )
    authorize(request, "freeze.create", w)
    _check_window(w)
    with transaction.atomic():
        w.save()
        audit.record(actor_for(request), "freeze.create", w, freeze_dict(w))
    return Status(201, freeze_dict(w))


@router.get("/freezes/{freeze_id}", response={200: FreezeOut, **ERRORS}, tags=["governance"])
def get_freeze_view(request, freeze_id: int):
    return freeze_dict(get_freeze(request, freeze_id))


@router.patch("/freezes/{freeze_id}", response={200: FreezeOut, **ERRORS}, tags=["governance"])
def update_freeze(request, freeze_id: int, payload: FreezePatchIn):
    """Change a window's reason, switch it off or on, or move a one-off window's end (lift it
    early: ``{"ends_at": "now"}`` is not JSON -- send the current time)."""
    w = get_freeze(request, freeze_id)
    authorize(request, "freeze.update", w)
    before = freeze_dict(w)
    for name, value in payload.model_dump(exclude_unset=True).items():
        if value is not None:
            setattr(w, name, _aware(value, w.timezone) if name == "ends_at" else value)
    _check_window(w)
    with transaction.atomic():
        w.save()
        after = freeze_dict(w)
        audit.record(actor_for(request), "freeze.update", w, after, before=before)
    return after


@router.delete("/freezes/{freeze_id}", response={204: None, **ERRORS}, tags=["governance"])
def delete_freeze(request, freeze_id: int):
    w = get_freeze(request, freeze_id)
    authorize(request, "freeze.delete", w)
    with transaction.atomic():
        audit.record(actor_for(request), "freeze.delete", w, before=freeze_dict(w))
        w.delete()
    return Status(204, None)


# --- roles ------------------------------------------------------------------------------------


class RoleIn(In):
    user: str | None = Field(None, max_length=150, description="a username, or")
    group: str | None = Field(None, max_length=150, description="a team (Django group) name")
    environment: str | None = Field(None, max_length=63, description="null: every environment")
    service: str | None = Field(None, max_length=63, description="null: every service")
    role: RoleName


class RoleOut(Out):
    id: int
    user: str | None
    group: str | None
    environment: str | None
    service: str | None
    role: str
    created_at: str | None


class RoleList(Out):
    items: list[RoleOut]


def role_dict(b: RoleBinding) -> dict:
    return {
        "id": b.pk,
        "user": b.user.get_username() if b.user_id else None,
        "group": b.group.name if b.group_id else None,
        "environment": b.environment.slug if b.environment_id else None,
        "service": b.service.slug if b.service_id else None,
        "role": b.role,
        "created_at": _ts(b.created_at),
    }


def _bindings():
    return RoleBinding.objects.select_related("user", "group", "environment", "service")


@router.get("/roles", response={200: RoleList, **ERRORS}, tags=["governance"])
def list_roles(request, environment: str | None = Query(None, max_length=63)):
    """Who holds which role where: the bindings whose place you administer."""
    rows = _bindings()
    if environment:
        rows = rows.filter(environment__slug=environment)
    items = []
    for b in rows:
        try:
            authorize(request, "role.list", b)
        except Exception:  # noqa: BLE001 -- NotFound/Forbidden: not yours to see
            continue
        items.append(role_dict(b))
    return {"items": items}


@router.post("/roles", response={201: RoleOut, **ERRORS}, tags=["governance"])
def create_role(request, payload: RoleIn):
    """Grant a role to a user or a team, in an environment (or all) for a service (or all).
    You must be an admin over the whole of that place."""
    if (payload.user is None) == (payload.group is None):
        raise InvalidInput(
            "Name a user or a group (team), not both.",
            details={"errors": [{"path": "user", "message": "give user or group"}]},
        )
    who = {}
    if payload.user is not None:
        who["user"] = get_user_model().objects.filter(username=payload.user).first()
        if who["user"] is None:
            raise NotFound(f"There is no user {payload.user!r}.", details={"user": payload.user})
    else:
        who["group"] = Group.objects.filter(name=payload.group).first()
        if who["group"] is None:
            raise NotFound(
                f"There is no group {payload.group!r}.", details={"group": payload.group}
            )
    b = RoleBinding(
        environment=get_environment(payload.environment) if payload.environment else None,
        service=get_service(payload.service) if payload.service else None,
        role=Role(payload.role),
        **who,
    )
    authorize(request, "role.create", b)
    with transaction.atomic():
        b.save()
        audit.record(actor_for(request), "role.create", b, role_dict(b))
    return Status(201, role_dict(b))


@router.delete("/roles/{role_id}", response={204: None, **ERRORS}, tags=["governance"])
def delete_role(request, role_id: int):
    b = _bindings().filter(pk=role_id).first()
    if b is None:
        raise NotFound(f"There is no role binding {role_id}.", details={"role": role_id})
    authorize(request, "role.delete", b)
    with transaction.atomic():
        audit.record(actor_for(request), "role.delete", b, before=role_dict(b))
        b.delete()
    return Status(204, None)
