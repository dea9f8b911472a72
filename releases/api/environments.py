"""API: environments — the promotion path in order; list, create, read, update (audited)."""

from __future__ import annotations

from django.db import transaction
from django.db.models import Max
from ninja import Router, Status

from releases import audit
from releases.api.auth import actor_for, authorize, visible
from releases.api.common import (
    ERRORS,
    changes,
    created_or_conflict,
    get_environment,
    iso,
    strategy_or_empty,
)
from releases.api.schemas import (
    EnvironmentIn,
    EnvironmentList,
    EnvironmentOut,
    EnvironmentPatchIn,
)
from releases.errors import NotFound
from releases.models import Environment

router = Router()


def environment_dict(e: Environment) -> dict:
    return {
        "slug": e.slug,
        "name": e.name,
        "order": e.order,
        "default_strategy": e.default_strategy or None,
        "rollback_window": e.rollback_window,
        "created_at": iso(e.created_at),
    }


# --- environments -----------------------------------------------------------------------------


@router.get("/environments", response={200: EnvironmentList, **ERRORS}, tags=["environments"])
def list_environments(request):
    """Environments in promotion order."""
    authorize(request, "environment.view")
    environments = visible(request, Environment.objects.all(), env="pk", service=None)
    return {"items": [environment_dict(e) for e in environments]}


@router.post("/environments", response={201: EnvironmentOut, **ERRORS}, tags=["environments"])
def create_environment(request, payload: EnvironmentIn):
    """Create an environment (by default last on the promotion path); 409 if the slug is taken."""
    authorize(request, "environment.create")
    strategy = strategy_or_empty(payload.default_strategy)
    order = payload.order
    if order is None:
        highest = Environment.objects.aggregate(m=Max("order"))["m"]
        order = 10 if highest is None else min(highest + 10, 2_147_483_647)
    with created_or_conflict(
        f"An environment called {payload.slug!r} already exists.", environment=payload.slug
    ):
        environment = Environment.objects.create(
            slug=payload.slug,
            name=payload.name or payload.slug,
            order=order,
            default_strategy=strategy,
            rollback_window=payload.rollback_window,
        )
        audit.record(
            actor_for(request), "environment.create", environment, environment_dict(environment)
        )
    return Status(201, environment_dict(environment))


@router.get("/environments/{slug}", response={200: EnvironmentOut, **ERRORS}, tags=["environments"])
def get_environment_view(request, slug: str):
    environment = get_environment(slug)
    authorize(request, "environment.view", environment)
    return environment_dict(environment)


@router.patch(
    "/environments/{slug}", response={200: EnvironmentOut, **ERRORS}, tags=["environments"]
)
def update_environment(request, slug: str, payload: EnvironmentPatchIn):
    """Change an environment's name, order, default strategy (null clears it) or rollback window
    (seconds; 0 turns it off, for deployments that succeed from then on)."""
    authorize(request, "environment.update", get_environment(slug))
    fields = payload.model_dump(exclude_unset=True)
    if "default_strategy" in fields:
        fields["default_strategy"] = strategy_or_empty(fields["default_strategy"])
    if fields.get("name", "") is None:
        fields["name"] = slug
    for name in ("order", "rollback_window"):  # null: leave as it is
        if name in fields and fields[name] is None:
            del fields[name]
    with transaction.atomic():
        environment = Environment.objects.select_for_update().filter(slug=slug).first()
        if environment is None:
            raise NotFound(f"There is no environment {slug!r}.", details={"environment": slug})
        before: dict = {}
        changed = changes(environment, fields, before)
        if changed:
            environment.save(update_fields=list(changed))
            audit.record(
                actor_for(request), "environment.update", environment, changed, before=before
            )
    return environment_dict(environment)
