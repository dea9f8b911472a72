"""API: services, environments, targets (where a service runs in an environment) and releases.

Services, environments and targets are configuration, written here with an AuditEvent each;
releases are created through ``actions.create_release`` (immutable, idempotent by version).
"""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.db.models import Max
from ninja import Query, Router, Status
from ninja.responses import codes_4xx

from integrations.registry import PROVIDERS, validate_target_config
from releases import actions, audit
from releases.api.auth import actor_for, authorize, summarise, visible
from releases.api.schemas import (
    EnvironmentIn,
    EnvironmentList,
    EnvironmentOut,
    EnvironmentPatchIn,
    ErrorOut,
    ReleaseIn,
    ReleaseOut,
    ReleasePage,
    ServiceIn,
    ServiceList,
    ServiceOut,
    ServicePatchIn,
    TargetIn,
    TargetList,
    TargetOut,
)
from releases.errors import Conflict, DomainError, NotFound
from releases.live.presenters import release_dict, target_dict
from releases.models import ACTIVE_STATES, Deployment, Environment, Release, Service, Target

router = Router()
ERRORS = {codes_4xx: ErrorOut}


class InvalidInput(DomainError):
    """A well-formed body whose values are wrong, listed by path in ``details.errors``."""

    code, status = "invalid_request", 422


def _ts(value):
    return value.isoformat() if value else None


def service_dict(s: Service) -> dict:
    base = f"/api/v1/services/{s.slug}"
    return {
        "slug": s.slug,
        "name": s.name,
        "repository": s.repository,
        "team": s.team,
        "default_strategy": s.default_strategy or None,
        "created_at": _ts(s.created_at),
        "links": {"self": base, "targets": f"{base}/targets", "releases": f"{base}/releases"},
    }


def environment_dict(e: Environment) -> dict:
    return {
        "slug": e.slug,
        "name": e.name,
        "order": e.order,
        "default_strategy": e.default_strategy or None,
        "created_at": _ts(e.created_at),
    }


def get_service(slug: str) -> Service:
    service = Service.objects.filter(slug=slug).first()
    if service is None:
        raise NotFound(f"There is no service {slug!r}.", details={"service": slug})
    return service


def get_environment(slug: str) -> Environment:
    environment = Environment.objects.filter(slug=slug).first()
    if environment is None:
        raise NotFound(f"There is no environment {slug!r}.", details={"environment": slug})
    return environment


def _strategy_or_empty(raw: dict | None) -> dict:
    """A default strategy as stored: normalised, or {} for none (null or {} clears it)."""
    return actions.validate_strategy(raw) if raw else {}


def _changes(obj, fields: dict, before: dict | None = None) -> dict:
    """Apply ``fields`` to ``obj``; return {field: new value} for those that changed (and put
    their old values in ``before``, for the audit trail)."""
    changed = {}
    for name, value in fields.items():
        if getattr(obj, name) != value:
            if before is not None:
                before[name] = getattr(obj, name)
            setattr(obj, name, value)
            changed[name] = value
    return changed


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
    strategy = _strategy_or_empty(payload.default_strategy)
    try:
        with transaction.atomic():
            service = Service.objects.create(
                slug=payload.slug,
                name=payload.name or payload.slug,
                repository=payload.repository,
                team=payload.team,
                default_strategy=strategy,
            )
            audit.record(actor_for(request), "service.create", service, service_dict(service))
    except IntegrityError:
        raise Conflict(
            f"A service called {payload.slug!r} already exists.", details={"service": payload.slug}
        ) from None
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
        fields["default_strategy"] = _strategy_or_empty(fields["default_strategy"])
    for key in ("name", "repository", "team"):
        if key in fields and fields[key] is None:
            fields[key] = "" if key != "name" else slug
    with transaction.atomic():
        service = Service.objects.select_for_update().filter(slug=slug).first()
        if service is None:
            raise NotFound(f"There is no service {slug!r}.", details={"service": slug})
        before: dict = {}
        changed = _changes(service, fields, before)
        if changed:
            service.save(update_fields=list(changed))
            audit.record(actor_for(request), "service.update", service, changed, before=before)
    return service_dict(service)


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
    strategy = _strategy_or_empty(payload.default_strategy)
    order = payload.order
    if order is None:
        highest = Environment.objects.aggregate(m=Max("order"))["m"]
        order = 10 if highest is None else min(highest + 10, 2_147_483_647)
    try:
        with transaction.atomic():
            environment = Environment.objects.create(
                slug=payload.slug,
                name=payload.name or payload.slug,
                order=order,
                default_strategy=strategy,
            )
            audit.record(
                actor_for(request), "environment.create", environment, environment_dict(environment)
            )
    except IntegrityError:
        raise Conflict(
            f"An environment called {payload.slug!r} already exists.",
            details={"environment": payload.slug},
        ) from None
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
    """Change an environment's name, order or default strategy (null clears it)."""
    authorize(request, "environment.update", get_environment(slug))
    fields = payload.model_dump(exclude_unset=True)
    if "default_strategy" in fields:
        fields["default_strategy"] = _strategy_or_empty(fields["default_strategy"])
    if fields.get("name", "") is None:
        fields["name"] = slug
    if "order" in fields and fields["order"] is None:
        del fields["order"]
    with transaction.atomic():
        environment = Environment.objects.select_for_update().filter(slug=slug).first()
        if environment is None:
            raise NotFound(f"There is no environment {slug!r}.", details={"environment": slug})
        before: dict = {}
        changed = _changes(environment, fields, before)
        if changed:
            environment.save(update_fields=list(changed))
            audit.record(
                actor_for(request), "environment.update", environment, changed, before=before
            )
    return environment_dict(environment)


# --- targets ----------------------------------------------------------------------------------


def _targets():
    return Target.objects.select_related("service", "environment", "stable_release")


@router.get("/services/{slug}/targets", response={200: TargetList, **ERRORS}, tags=["targets"])
def list_targets(request, slug: str):
    """Where the service runs, in promotion order, with what each last reported."""
    service = get_service(slug)
    authorize(request, "target.view", service)
    targets = visible(
        request, _targets().filter(service=service), env="environment", service="service"
    )
    return {"items": [target_dict(t) for t in targets]}


@router.get("/services/{slug}/targets/{env}", response={200: TargetOut, **ERRORS}, tags=["targets"])
def get_target(request, slug: str, env: str):
    """The target, with ``endpoint``, ``stable_version`` and ``slots`` as last observed by the
    reconcile loop (this never calls the integration)."""
    service, environment = get_service(slug), get_environment(env)
    target = _targets().filter(service=service, environment=environment).first()
    if target is None:
        raise NotFound(
            f"{service.slug} has no target in {environment.slug}: PUT one first.",
            details={"service": service.slug, "environment": environment.slug},
        )
    authorize(request, "target.view", target)
    return target_dict(target)


def _check_target_config(provider: str, config: dict) -> None:
    problems = validate_target_config(provider, config)
    if not problems:
        return
    errors = []
    for path, message in problems:
        if provider in PROVIDERS and path not in ("config",):
            path = f"config.{path}" if path else "config"
        errors.append({"path": path, "message": message})
    raise InvalidInput(summarise(errors, "The target is invalid"), details={"errors": errors})


@router.put(
    "/services/{slug}/targets/{env}",
    response={200: TargetOut, 201: TargetOut, **ERRORS},
    tags=["targets"],
)
def put_target(request, slug: str, env: str, payload: TargetIn):
    """Create (201) or replace (200) where the service runs in the environment: the provider,
    its config (validated by the provider) and an optional default strategy (normalised).
    Changing the provider or config while a deployment is active there is a 409."""
    service, environment = get_service(slug), get_environment(env)
    # the target, or for a new one an unsaved stand-in saying where it would be
    where = _targets().filter(service=service, environment=environment).first()
    authorize(request, "target.update", where or Target(service=service, environment=environment))
    _check_target_config(payload.provider, payload.config)
    strategy = _strategy_or_empty(payload.strategy)
    fields = {"provider": payload.provider, "config": payload.config, "strategy": strategy}
    actor = actor_for(request)
    with transaction.atomic():
        # a short critical section: the row lock orders concurrent PUTs of the same target
        target = (
            Target.objects.select_for_update()
            .filter(service=service, environment=environment)
            .first()
        )
        if target is None:
            try:
                with transaction.atomic():
                    target = Target.objects.create(
                        service=service, environment=environment, **fields
                    )
            except IntegrityError:
                raise Conflict(
                    f"The target {service.slug} in {environment.slug} was created concurrently; "
                    "try again.",
                ) from None
            audit.record(actor, "target.create", target, fields)
            created = True
        else:
            moving = (target.provider, target.config) != (payload.provider, payload.config)
            active = Deployment.objects.filter(target=target, state__in=ACTIVE_STATES).first()
            if moving and active is not None:
                raise Conflict(
                    f"Deployment #{active.pk} is {active.state} on {target}: wait for it or "
                    "abort it before changing the target's provider or config.",
                    details={"active_deployment": active.pk},
                )
            before: dict = {}
            changed = _changes(target, fields, before)
            if changed:
                target.save(update_fields=[*changed, "updated_at"])
                audit.record(actor, "target.update", target, changed, before=before)
            created = False
    target = _targets().get(pk=target.pk)
    return Status(201 if created else 200, target_dict(target))


# --- releases ---------------------------------------------------------------------------------


@router.post(
    "/services/{slug}/releases",
    response={200: ReleaseOut, 201: ReleaseOut, **ERRORS},
    tags=["releases"],
)
def create_release(request, slug: str, payload: ReleaseIn):
    """Register a build. 201 when new; the same version with the same body again is 200 (safe
    to retry); the same version with a different body is 409: releases are immutable."""
    service = get_service(slug)
    authorize(request, "release.create", service)
    release, created = actions.create_release(
        actor_for(request),
        service,
        version=payload.version,
        artifact=payload.artifact,
        commit=payload.commit,
        notes=payload.notes,
    )
    return Status(201 if created else 200, release_dict(release))


@router.get("/services/{slug}/releases", response={200: ReleasePage, **ERRORS}, tags=["releases"])
def list_releases(
    request,
    slug: str,
    limit: int = Query(50, ge=1, le=200),
    before: int | None = Query(None, ge=0, le=2**63 - 1, description="the previous page's next"),
):
    """Newest first, cursor-paginated: pass ``next`` back as ``before``."""
    service = get_service(slug)
    authorize(request, "release.view", service)
    releases = Release.objects.select_related("service", "created_by").filter(service=service)
    if before is not None:
        releases = releases.filter(pk__lt=before)
    rows = list(releases.order_by("-id")[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    return {
        "items": [release_dict(r) for r in rows],
        "next": rows[-1].pk if more else None,
    }


@router.get(
    "/services/{slug}/releases/{version}",
    response={200: ReleaseOut, **ERRORS},
    tags=["releases"],
)
def get_release(request, slug: str, version: str):
    service = get_service(slug)
    release = (
        Release.objects.select_related("service", "created_by")
        .filter(service=service, version=version)
        .first()
    )
    if release is None:
        raise NotFound(
            f"{service.slug} has no release {version!r}.",
            details={"service": service.slug, "version": version},
        )
    authorize(request, "release.view", release)
    return release_dict(release)
