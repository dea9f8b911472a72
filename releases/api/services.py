"""API: services — list, create (409 if the slug is taken), read, update (audited)."""

from __future__ import annotations

from django.db import transaction
from ninja import Router, Status
from ninja.responses import codes_4xx

from releases import audit
from releases.api.auth import actor_for, authorize, visible
from releases.api.common import (
    ERRORS,
    changes,
    created_or_conflict,
    get_service,
    iso,
    strategy_or_empty,
)
from releases.api.schemas import (
    ErrorOut,
    ServiceIn,
    ServiceList,
    ServiceOut,
    ServicePatchIn,
)
from releases.errors import NotFound
from releases.models import Service

router = Router()


def service_dict(s: Service) -> dict:
    base = f"/api/v1/services/{s.slug}"
    return {
        "slug": s.slug,
        "name": s.name,
        "repository": s.repository,
        "team": s.team,
        "default_strategy": s.default_strategy or None,
        "created_at": iso(s.created_at),
        "links": {"self": base, "targets": f"{base}/targets", "releases": f"{base}/releases"},
    }


# --- services ---------------------------------------------------------------------------------


@router.get("/services", response={200: ServiceList, codes_4xx: ErrorOut}, tags=["services"])
def list_services(request):
    authorize(request, "service.view")
    services = visible(request, Service.objects.all(), env=None, service="pk")
    return {"items": [service_dict(s) for s in services]}


@router.post("/services", response={201: ServiceOut, codes_4xx: ErrorOut}, tags=["services"])
def create_service(request, payload: ServiceIn):
    """Create a service; 409 if the slug is taken."""
    authorize(request, "service.create")
    strategy = strategy_or_empty(payload.default_strategy)
    with created_or_conflict(
        f"A service called {payload.slug!r} already exists.", service=payload.slug
    ):
        service = Service.objects.create(
            slug=payload.slug,
            name=payload.name or payload.slug,
            repository=payload.repository,
            team=payload.team,
            default_strategy=strategy,
        )
        audit.record(actor_for(request), "service.create", service, service_dict(service))
    return Status(201, service_dict(service))


@router.get("/services/{slug}", response={200: ServiceOut, **ERRORS}, tags=["services"])
def get_service_view(request, slug: str):
    service = get_service(slug)
    authorize(request, "service.view", service)
    return service_dict(service)


@router.patch("/services/{slug}", response={200: ServiceOut, **ERRORS}, tags=["services"])
def update_service(request, slug: str, payload: ServicePatchIn):
    """Change a service's name, repository, team or default strategy (null clears it)."""
    authorize(request, "service.update", get_service(slug))
    fields = payload.model_dump(exclude_unset=True)
    if "default_strategy" in fields:
        fields["default_strategy"] = strategy_or_empty(fields["default_strategy"])
    for key in ("name", "repository", "team"):
        if key in fields and fields[key] is None:
            fields[key] = "" if key != "name" else slug
    with transaction.atomic():
        service = Service.objects.select_for_update().filter(slug=slug).first()
        if service is None:
            raise NotFound(f"There is no service {slug!r}.", details={"service": slug})
        before: dict = {}
        changed = changes(service, fields, before)
        if changed:
            service.save(update_fields=list(changed))
            audit.record(actor_for(request), "service.update", service, changed, before=before)
    return service_dict(service)
