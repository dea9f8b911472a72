"""Starting a deployment: the target and its release, the strategy (the request's, the
environment's, the service's or the default), the approval gate, the freeze gate and its
recorded override; and retrying a deployment that ended without going live."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.utils import timezone

from releases import audit
from releases.actions import window
from releases.actions.common import DEFAULT_STRATEGY, enqueue_tick, other_slot, record_event
from releases.actions.strategy import validate_strategy
from releases.actors import Actor
from releases.errors import (
    Conflict,
    Forbidden,
    Frozen,
    InvalidRequest,
    NotFound,
)
from releases.governance import approvals, freezes, policy
from releases.live import events
from releases.models import (
    ACTIVE_STATES,
    Deployment,
    DeploymentEvent,
    Environment,
    FreezeOverride,
    Release,
    Service,
    State,
    Target,
)

# --- starting a deployment --------------------------------------------------------------------


def resolve_strategy(target: Target, raw: dict | None) -> dict:
    """The spec given, else the target's, the service's, the environment's, else the default."""
    for candidate in (
        raw,
        target.strategy,
        target.service.default_strategy,
        target.environment.default_strategy,
    ):
        if candidate:
            return validate_strategy(candidate, provider=target.provider, config=target.config)
    return validate_strategy(DEFAULT_STRATEGY, provider=target.provider, config=target.config)


def start_deployment(
    actor: Actor,
    *,
    service: Service,
    environment: Environment,
    version: str,
    strategy: dict | None = None,
    reason: str = "",
    idempotency_key: str = "",
    override_freeze: str | None = None,
    redeploy: bool = False,
) -> tuple[Deployment, bool]:
    """Create a deployment of ``version`` to ``service`` in ``environment``.

    Returns (deployment, created). A repeated ``idempotency_key`` returns the first deployment.
    Needs the deployer role there. During a freeze window it raises Frozen, unless an admin
    gives ``override_freeze`` (a written reason, audited and shown on the deployment). When the
    environment's policy requires approvals it starts in ``awaiting_approval``. Deploying the
    version already live there replaces every instance: it needs ``redeploy`` said explicitly.
    """
    policy.require(actor, "deployment.create", Target(service=service, environment=environment))
    target = (
        Target.objects.select_related("service", "environment", "stable_release")
        .filter(service=service, environment=environment)
        .first()
    )
    if target is None:
        raise NotFound(
            f"{service.slug} has no target in {environment.slug}: "
            f"PUT /api/v1/services/{service.slug}/targets/{environment.slug} first."
        )
    if idempotency_key:
        earlier = Deployment.objects.filter(target=target, idempotency_key=idempotency_key).first()
        if earlier is not None:
            return earlier, False
    release = Release.objects.filter(service=service, version=version).first()
    if release is None:
        raise NotFound(f"{service.slug} has no release {version}: create the release first.")
    release.service = service  # what the audit's "#id svc version" names: no query for it again
    if target.stable_release_id == release.pk and not redeploy:
        raise Conflict(
            f"{service.slug} {version} is already live in {environment.slug}: deploying it again "
            "replaces every instance. Say so explicitly (redeploy) if that is what you want.",
            details={"live_version": version, "redeploy": False},
            code="already_live",
        )
    spec = resolve_strategy(target, strategy)
    overriding = freeze_check(actor, target, override_freeze)
    return insert_or_replay(
        actor,
        target=target,
        release=release,
        spec=spec,
        reason=reason,
        idempotency_key=idempotency_key,
        awaiting=approvals.needs_approval(target),
        override=(overriding, override_freeze) if overriding else None,
    )


def insert_or_replay(actor: Actor, *, target: Target, idempotency_key: str = "", **fields):
    """(the new deployment, True); or, when a concurrent retry with the same idempotency key
    committed first (the insert then fails on the constraints), (that deployment, False)."""
    try:
        return create_deployment(
            actor, target=target, idempotency_key=idempotency_key, **fields
        ), True
    except Conflict:
        if idempotency_key:
            earlier = Deployment.objects.filter(target=target, idempotency_key=idempotency_key)
            if (found := earlier.first()) is not None:
                return found, False
        raise


def freeze_check(actor: Actor, target: Target, override_freeze: str | None):
    """None when no freeze window is in force on ``target``; the window being overridden when an
    admin gives a written reason; Frozen otherwise (naming the window and when it lifts)."""
    if override_freeze is not None and not override_freeze.strip():
        raise InvalidRequest(
            "A freeze override needs a written reason: say why this cannot wait.",
            details={"field": "override_freeze"},
        )
    active = freezes.active_freeze(target)
    if active is None:
        return None
    if override_freeze is None:
        raise Frozen(
            f"{active.message}. New deployments wait until it lifts; an admin may override it "
            "with a written reason.",
            details=active.details(),
        )
    try:
        policy.require(actor, "deployment.override_freeze", target)
    except Forbidden as exc:
        who = "This token may not" if "needed_scope" in exc.details else "Only an admin may"
        raise Forbidden(
            f"{active.message}. {who} override a freeze: {exc.message}",
            details={**active.details(), **exc.details},
        ) from None
    return active


def record_override(actor: Actor, d: Deployment, active, reason: str) -> DeploymentEvent:
    """An admin let ``d`` through a freeze: kept on the deployment, audited, on its time line."""
    reason = reason.strip()
    w = active.window
    FreezeOverride.objects.create(
        deployment=d,
        window=w,
        window_name=w.name,
        reason=reason,
        user=actor.user,
        actor_name=actor.name[:150],
    )
    audit.record(
        actor,
        "deployment.freeze_override",
        d,
        {
            "window": w.name,
            "window_id": w.pk,
            "until": None if active.error else active.until.isoformat(),
            "reason": reason,
        },
    )
    return record_event(
        d,
        "freeze_override",
        f"{actor.name} overrode the freeze {w.name!r}: {reason}",
        actor,
        {"window": w.name, "reason": reason},
    )


def create_deployment(
    actor: Actor,
    *,
    target: Target,
    release: Release,
    spec: dict,
    reason: str = "",
    idempotency_key: str = "",
    rollback_of: Deployment | None = None,
    awaiting: bool = False,
    override=None,
    started: bool = False,
) -> Deployment:
    """Insert the deployment (Conflict if another is active on the target). ``started``: it
    begins ``progressing`` at once, its start recorded here, so its first tick goes straight to
    the target -- a switch back inside the rollback window, whose every millisecond counts."""
    previous = target.stable_release.version if target.stable_release_id else "nothing"
    state = State.PENDING
    if awaiting:
        state = State.AWAITING_APPROVAL
    elif started:
        state = State.PROGRESSING
    try:
        with transaction.atomic():
            d = Deployment.objects.create(
                target=target,
                release=release,
                from_release=target.stable_release,
                rollback_of=rollback_of,
                state=state,
                started_at=timezone.now() if started else None,
                strategy=spec,
                stable_slot=target.stable_slot,
                canary_slot=other_slot(target.stable_slot),
                reason=reason,
                created_by=actor.user,
                created_via=actor.channel,
                idempotency_key=idempotency_key,
                next_tick_at=None if awaiting else timezone.now(),
            )
            what = "rollback" if rollback_of else "deployment"
            event = record_event(
                d,
                "created",
                f"{actor.name} started a {spec['kind']} {what} of {release.version} "
                f"(from {previous})",
                actor,
                {"strategy": spec, "reason": reason},
            )
            audit.record(
                actor,
                "deployment.rollback" if rollback_of else "deployment.create",
                d,
                {"version": release.version, "strategy": spec, "reason": reason},
            )
            published = [event.pk]
            if started:  # what the first tick's ``mark_started`` records otherwise
                published.append(
                    record_event(d, "state", "rollout started", actor, {"state": d.state}).pk
                )
                audit.record(actor, "deployment.start", d, {"state": d.state})
            window.close_for(target, d, actor)  # the new deployment takes the warm slot
            if override is not None:
                published.append(record_override(actor, d, *override).pk)
            if awaiting:
                required = approvals.policy_for(target.environment).required_approvals
                published.append(
                    record_event(
                        d,
                        "state",
                        f"waiting for {required} approval{'s' if required != 1 else ''} "
                        f"({target.environment.slug} is protected)",
                        actor,
                        {"state": d.state, "required": required},
                    ).pk
                )
            events.publish_deployment(d.pk, published)
            if not awaiting:
                enqueue_tick(d.pk, priority=rollback_of is not None)
    except IntegrityError:
        active = Deployment.objects.filter(target=target, state__in=ACTIVE_STATES).first()
        which = f"#{active.pk}, {active.state}" if active else "#?"
        raise Conflict(
            f"Another deployment ({which}) is active on {target}: wait for it, or abort it first.",
            details={"active_deployment": active.pk if active else None},
        ) from None
    return d


# states a deployment may be retried from: it ended without the new release going live
RETRYABLE = (State.ABORTED, State.FAILED, State.ROLLED_BACK)


def retry(actor: Actor, deployment_id: int, *, reason: str = "") -> Deployment:
    """Start a new deployment of the same release with the same spec, after an abort, a failure
    or a rollback (the one-active-deployment rule applies). Returns the new deployment."""
    d = (
        Deployment.objects.select_related("target__service", "target__environment", "release")
        .filter(pk=deployment_id)
        .first()
    )
    if d is None:
        raise NotFound(f"Deployment {deployment_id} does not exist.")
    policy.require(actor, "deployment.retry", d)
    if d.state not in RETRYABLE:
        states = ", ".join(str(s) for s in RETRYABLE)
        raise Conflict(
            f"Cannot retry deployment {d.pk}: it is {d.state} (retry needs {states}).",
            details={"state": d.state, "allowed_states": [str(s) for s in RETRYABLE]},
        )
    new, _ = start_deployment(
        actor,
        service=d.target.service,
        environment=d.target.environment,
        version=d.release.version,
        strategy=d.strategy,
        reason=reason or f"retry of deployment #{d.pk}",
        redeploy=True,  # retrying is asking for this release again
    )
    with transaction.atomic():
        event = record_event(
            d, "retry", f"{actor.name} retried it as deployment #{new.pk}", actor, {"retry": new.pk}
        )
        audit.record(actor, "deployment.retry", d, {"retry": new.pk})
        events.publish_deployment(d.pk, [event.pk])
    return new
