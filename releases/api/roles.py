"""API: role bindings — a role (viewer, deployer, approver, admin) granted to a user or a group,
in one environment or all, for one service or all. Admins only; audited."""

from __future__ import annotations

from typing import Literal

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from ninja import Field, Query, Router, Status

from releases import audit
from releases.api.auth import actor_for, authorize
from releases.api.common import ERRORS, InvalidInput, get_environment, get_service, iso_utc
from releases.api.schemas import In, Out
from releases.errors import NotFound
from releases.models import Role, RoleBinding

router = Router()


RoleName = Literal["viewer", "deployer", "approver", "admin"]


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
        "created_at": iso_utc(b.created_at),
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
