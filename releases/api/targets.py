"""API: targets — where a service runs in an environment, and which provider runs it there
(``integrations.registry`` validates its config). PUT creates or replaces, audited; a target
with an active deployment cannot move to another provider or config."""

from __future__ import annotations

from django.db import transaction
from ninja import Router, Status

from integrations.registry import PROVIDERS, validate_target_config
from releases import audit
from releases.api.auth import actor_for, authorize, summarise, visible
from releases.api.common import (
    ERRORS,
    InvalidInput,
    changes,
    created_or_conflict,
    get_environment,
    get_service,
    strategy_or_empty,
)
from releases.api.schemas import (
    TargetIn,
    TargetList,
    TargetOut,
)
from releases.errors import Conflict, NotFound
from releases.live.presenters import target_dict
from releases.models import ACTIVE_STATES, Deployment, Target

router = Router()


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
    strategy = strategy_or_empty(payload.strategy)
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
            with created_or_conflict(
                f"The target {service.slug} in {environment.slug} was created concurrently; "
                "try again."
            ):
                target = Target.objects.create(service=service, environment=environment, **fields)
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
            changed = changes(target, fields, before)
            if changed:
                target.save(update_fields=[*changed, "updated_at"])
                audit.record(actor, "target.update", target, changed, before=before)
            created = False
    target = _targets().get(pk=target.pk)
    return Status(201 if created else 200, target_dict(target))
