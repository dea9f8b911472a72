"""API: freeze windows — one-off, weekly or cron, in a named time zone; when each is in force
comes from ``releases.models.schedule``. Changes need the admin role where they apply."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Literal

from django.db import transaction
from django.utils import timezone
from ninja import Field, Query, Router, Status

from releases import audit
from releases.api.auth import actor_for, authorize, summarise, visible
from releases.api.common import ERRORS, InvalidInput, get_environment, get_service, iso_utc
from releases.api.schemas import REASON_MAX, In, Out
from releases.errors import NotFound
from releases.models import FreezeWindow, schedule

router = Router()


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
        "until": iso_utc(until),
        "starts_at": iso_utc(w.starts_at),
        "ends_at": iso_utc(w.ends_at),
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
