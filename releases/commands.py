"""The one place a deployment changes state.

Every command runs in a transaction, validates the transition against the state it reads under a
short row lock, writes the row (bumping its optimistic-lock ``version``), an AuditEvent and a
DeploymentEvent, and after commit publishes the change and enqueues a reconcile tick. Commands
never call infrastructure: operator intent is recorded in the database, and the reconcile loop
(``releases.reconcile``) carries it out.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from releases import audit, events
from releases.actors import Actor
from releases.errors import Conflict, InvalidRequest, InvalidSpec, NotFound
from releases.models import (
    ACTIVE_STATES,
    Deployment,
    DeploymentEvent,
    Environment,
    Release,
    Service,
    State,
    Target,
)
from strategies.spec import SpecError, normalise

logger = logging.getLogger(__name__)

DEFAULT_STRATEGY = {"kind": "rolling", "replicas": 2}
SLOTS = ("blue", "green")
LEASE_SECONDS = 15  # ticks are short: every integration call has a timeout of a few seconds

# operator command -> states it may be given in
ALLOWED = {
    "promote": (State.PROGRESSING, State.PAUSED),
    "pause": (State.PENDING, State.PROGRESSING),
    "resume": (State.PAUSED,),
    "abort": (State.PENDING, State.AWAITING_APPROVAL, State.PROGRESSING, State.PAUSED),
    "rollback": (State.PENDING, State.PROGRESSING, State.PAUSED, State.SUCCEEDED),
}


# --- helpers ----------------------------------------------------------------------------------


def validate_strategy(raw: dict) -> dict:
    """Normalise a strategy spec or raise InvalidSpec listing every bad field."""
    if not isinstance(raw, dict):
        raise InvalidSpec(
            "The strategy must be a JSON object.",
            details={"errors": [{"path": "", "message": "must be an object"}]},
        )
    try:
        return normalise(raw)
    except SpecError as exc:
        errors = [{"path": e.path, "message": e.message} for e in exc.errors]
        first = errors[0] if errors else {"path": "", "message": str(exc)}
        where = f" at {first['path']}" if first["path"] else ""
        raise InvalidSpec(
            f"The strategy is invalid{where}: {first['message']}"
            + (f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""),
            details={"errors": errors},
        ) from None


def _event(d: Deployment, kind: str, message: str, actor: Actor, data: dict | None = None):
    return DeploymentEvent.objects.create(
        deployment=d, kind=kind, message=message, data=data or {}, actor=actor.name
    )


def _enqueue_tick(deployment_id: int, *, priority: bool = False) -> None:
    """After commit, ask a worker to tick the deployment. A broker outage loses nothing: the
    intent is in the database and the periodic sweep will enqueue the tick once Redis is back."""

    def send():
        from releases.tasks import enqueue_tick

        enqueue_tick(deployment_id, priority=priority)

    transaction.on_commit(send)


def _locked(deployment_id: int) -> Deployment:
    # A short critical section: read state and version under the row lock, write, commit.
    d = (
        Deployment.objects.select_for_update(of=("self",))
        .select_related("target__service", "target__environment", "release", "from_release")
        .filter(pk=deployment_id)
        .first()
    )
    if d is None:
        raise NotFound(f"Deployment {deployment_id} does not exist.")
    return d


def _save(d: Deployment, **fields) -> None:
    """Write ``fields`` with a version check (the row is locked, so this only guards bugs)."""
    fields["version"] = d.version + 1
    fields["updated_at"] = timezone.now()
    updated = Deployment.objects.filter(pk=d.pk, version=d.version).update(**fields)
    if updated != 1:
        raise Conflict(f"Deployment {d.pk} changed while it was being updated; try again.")
    for name, value in fields.items():
        setattr(d, name, value)


def _check_allowed(d: Deployment, command: str) -> None:
    allowed = ALLOWED[command]
    if d.state not in allowed:
        states = ", ".join(str(s) for s in allowed)
        raise Conflict(
            f"Cannot {command} deployment {d.pk}: it is {d.state} ({command} needs {states}).",
            details={"state": d.state, "allowed_states": [str(s) for s in allowed]},
        )


def _other_slot(slot: str) -> str:
    return SLOTS[1] if slot == SLOTS[0] else SLOTS[0]


# --- releases ---------------------------------------------------------------------------------


def create_release(
    actor: Actor,
    service: Service,
    *,
    version: str,
    artifact: dict | None = None,
    commit: str = "",
    notes: str = "",
) -> tuple[Release, bool]:
    """Register a build. The same version twice with the same body is a no-op (returns created
    False); with a different body it is a conflict: releases are immutable."""
    version = (version or "").strip()
    if not version:
        raise InvalidRequest("A release needs a version.", details={"field": "version"})
    artifact = artifact or {}
    existing = Release.objects.filter(service=service, version=version).first()
    if existing is not None:
        if (existing.artifact, existing.commit, existing.notes) == (artifact, commit, notes):
            return existing, False
        raise Conflict(
            f"Release {version} of {service.slug} already exists with a different body; "
            "releases are immutable, so publish a new version.",
            details={"version": version},
        )
    try:
        with transaction.atomic():
            release = Release.objects.create(
                service=service,
                version=version,
                artifact=artifact,
                commit=commit,
                notes=notes,
                created_by=actor.user,
                created_via=actor.channel,
            )
            audit.record(actor, "release.create", release, {"version": version, "commit": commit})
    except IntegrityError:  # a concurrent create of the same version won the race
        return create_release(
            actor, service, version=version, artifact=artifact, commit=commit, notes=notes
        )
    return release, True


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
            return validate_strategy(candidate)
    return validate_strategy(DEFAULT_STRATEGY)


def start_deployment(
    actor: Actor,
    *,
    service: Service,
    environment: Environment,
    version: str,
    strategy: dict | None = None,
    reason: str = "",
    idempotency_key: str = "",
) -> tuple[Deployment, bool]:
    """Create a deployment of ``version`` to ``service`` in ``environment``.

    Returns (deployment, created). A repeated ``idempotency_key`` returns the first deployment.
    """
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
    spec = resolve_strategy(target, strategy)
    return _create_deployment(
        actor,
        target=target,
        release=release,
        spec=spec,
        reason=reason,
        idempotency_key=idempotency_key,
    ), True


def _create_deployment(
    actor: Actor,
    *,
    target: Target,
    release: Release,
    spec: dict,
    reason: str = "",
    idempotency_key: str = "",
    rollback_of: Deployment | None = None,
) -> Deployment:
    previous = target.stable_release.version if target.stable_release_id else "nothing"
    try:
        with transaction.atomic():
            d = Deployment.objects.create(
                target=target,
                release=release,
                from_release=target.stable_release,
                rollback_of=rollback_of,
                state=State.PENDING,
                strategy=spec,
                stable_slot=target.stable_slot,
                canary_slot=_other_slot(target.stable_slot),
                reason=reason,
                created_by=actor.user,
                created_via=actor.channel,
                idempotency_key=idempotency_key,
                next_tick_at=timezone.now(),
            )
            what = "rollback" if rollback_of else "deployment"
            event = _event(
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
            events.publish_deployment(d.pk, [event.pk])
            _enqueue_tick(d.pk, priority=rollback_of is not None)
    except IntegrityError:
        active = Deployment.objects.filter(target=target, state__in=ACTIVE_STATES).first()
        if idempotency_key and active is None:
            earlier = Deployment.objects.filter(target=target, idempotency_key=idempotency_key)
            if earlier.exists():
                return earlier.get()
        which = f"#{active.pk}, {active.state}" if active else "#?"
        raise Conflict(
            f"Another deployment ({which}) is active on {target}: wait for it, or abort it first.",
            details={"active_deployment": active.pk if active else None},
        ) from None
    return d


# --- operator commands ------------------------------------------------------------------------


def promote(actor: Actor, deployment_id: int, *, full: bool = False) -> Deployment:
    """Finish the current pause (or, with ``full``, go straight to 100%). Resumes if paused."""
    with transaction.atomic():
        d = _locked(deployment_id)
        _check_allowed(d, "promote")
        intent = "promote_full" if full else "promote"
        _save(d, intent=intent, state=State.PROGRESSING, next_tick_at=timezone.now())
        what = "promote fully (skip to 100%)" if full else "promote to the next step"
        event = _event(d, "intent", f"{actor.name} asked to {what}", actor, {"intent": intent})
        audit.record(actor, f"deployment.{intent}", d, {"state": d.state})
        events.publish_deployment(d.pk, [event.pk])
        _enqueue_tick(d.pk)
    return d


def pause(actor: Actor, deployment_id: int) -> Deployment:
    with transaction.atomic():
        d = _locked(deployment_id)
        _check_allowed(d, "pause")
        _save(d, state=State.PAUSED)
        event = _event(d, "state", f"{actor.name} paused the deployment", actor, {"state": d.state})
        audit.record(actor, "deployment.pause", d)
        events.publish_deployment(d.pk, [event.pk])
    return d


def resume(actor: Actor, deployment_id: int) -> Deployment:
    with transaction.atomic():
        d = _locked(deployment_id)
        _check_allowed(d, "resume")
        _save(d, state=State.PROGRESSING, next_tick_at=timezone.now())
        event = _event(
            d, "state", f"{actor.name} resumed the deployment", actor, {"state": d.state}
        )
        audit.record(actor, "deployment.resume", d)
        events.publish_deployment(d.pk, [event.pk])
        _enqueue_tick(d.pk)
    return d


def abort(actor: Actor, deployment_id: int, *, reason: str = "") -> Deployment:
    """Stop the rollout and send all traffic back to the stable release; ends ``aborted``."""
    return _begin_rollback(actor, deployment_id, "abort", State.ABORTED, reason)


def rollback(actor: Actor, deployment_id: int, *, reason: str = "") -> Deployment:
    """Roll back an active deployment, or roll a succeeded one back to the previous release
    (which starts a new deployment of that release, returned here)."""
    with transaction.atomic():
        d = _locked(deployment_id)
        _check_allowed(d, "rollback")
        if d.state != State.SUCCEEDED:
            return _begin_rollback(actor, deployment_id, "rollback", State.ROLLED_BACK, reason)
        target = Target.objects.select_related("service", "environment", "stable_release").get(
            pk=d.target_id
        )
        if d.from_release_id is None:
            raise Conflict(
                f"Deployment {d.pk} was the first release of {target}: there is nothing to "
                "roll back to.",
            )
        if target.stable_release_id != d.release_id:
            raise Conflict(
                f"Deployment {d.pk} is no longer what runs on {target} "
                f"({target.stable_release.version if target.stable_release_id else 'nothing'} "
                "does): roll back the latest deployment instead.",
            )
        spec = rollback_spec(d.strategy)
        return _create_deployment(
            actor,
            target=target,
            release=d.from_release,
            spec=spec,
            reason=reason or f"roll back deployment #{d.pk} ({d.release.version})",
            rollback_of=d,
        )


def rollback_spec(spec: dict) -> dict:
    """The fastest safe way back to the previous release: all old instances up at once (surge),
    traffic moved as soon as they are healthy, then the new ones drained."""
    replicas = spec.get("replicas") or spec.get("stable_replicas") or 1
    raw = {
        "kind": "rolling",
        "replicas": replicas,
        "batch_size": "100%",
        "max_surge": "100%",
        "max_unavailable": 0,
    }
    if "health" in spec:
        raw["health"] = spec["health"]
    return validate_strategy(raw)


def _begin_rollback(actor, deployment_id, command, outcome, reason) -> Deployment:
    with transaction.atomic():
        d = _locked(deployment_id)
        _check_allowed(d, command)
        if d.state == State.AWAITING_APPROVAL:  # nothing was deployed: end at once
            _save(d, state=outcome, finished_at=timezone.now(), intent="")
            kind_msg = f"{actor.name} {'aborted' if command == 'abort' else 'rolled back'}"
        else:
            _save(
                d,
                state=State.ROLLING_BACK,
                rollback_outcome=outcome,
                intent="",
                next_tick_at=timezone.now(),
            )
            kind_msg = (
                f"{actor.name} asked to {command}: sending traffic back to the stable release"
            )
        if reason:
            kind_msg += f" ({reason})"
        event = _event(d, "state", kind_msg, actor, {"state": d.state, "reason": reason})
        audit.record(actor, f"deployment.{command}", d, {"reason": reason})
        events.publish_deployment(d.pk, [event.pk])
        _enqueue_tick(d.pk, priority=True)
    return d


# --- the reconcile loop's commands ------------------------------------------------------------


def claim(deployment_id: int, owner: str) -> Deployment | None:
    """Take the deployment's lease if it is active and free; None if another worker holds it."""
    now = timezone.now()
    taken = (
        Deployment.objects.filter(pk=deployment_id, state__in=ACTIVE_STATES)
        .exclude(state=State.AWAITING_APPROVAL)
        .exclude(lease_until__gt=now)
        .update(lease_owner=owner, lease_until=now + timedelta(seconds=LEASE_SECONDS))
    )
    if not taken:
        return None
    return Deployment.objects.select_related(
        "target__service", "target__environment", "release", "from_release"
    ).get(pk=deployment_id)


def release_claim(deployment_id: int, owner: str, *, wait: float | None) -> int | None:
    """Give the lease back and set when the next tick is due. Returns the row's version."""
    fields = {"lease_owner": "", "lease_until": None}
    if wait is not None:
        fields["next_tick_at"] = timezone.now() + timedelta(seconds=wait)
    Deployment.objects.filter(pk=deployment_id, lease_owner=owner).update(**fields)
    return Deployment.objects.filter(pk=deployment_id).values_list("version", flat=True).first()


def mark_started(d: Deployment) -> bool:
    """pending -> progressing, on the first tick. False if the row changed meanwhile."""
    with transaction.atomic():
        updated = Deployment.objects.filter(pk=d.pk, version=d.version, state=State.PENDING).update(
            state=State.PROGRESSING,
            started_at=timezone.now(),
            version=d.version + 1,
            updated_at=timezone.now(),
        )
        if not updated:
            return False
        d.state, d.version, d.started_at = State.PROGRESSING, d.version + 1, timezone.now()
        event = _event(d, "state", "rollout started", Actor.system(), {"state": d.state})
        events.publish_deployment(d.pk, [event.pk])
    return True


def record_tick(
    d: Deployment,
    *,
    observed: dict,
    endpoint: str,
    progress: dict,
    step_index: int,
    step: str,
    weights: dict,
    message: str,
    new_events: list[dict],
    consumed_intent: str = "",
    new_state: str | None = None,
    failure: str = "",
) -> bool:
    """Store what a tick saw and did. Version-checked: if an operator command landed during the
    tick, nothing is written (the next tick decides again from the new state) and False returns.
    """
    actor = Actor.system()
    now = timezone.now()
    with transaction.atomic():
        fields = {
            "progress": progress,
            "step_index": step_index,
            "step": step[:300],
            "weights": weights,
            "message": message,
            "version": d.version + 1,
            "updated_at": now,
        }
        if consumed_intent:
            fields["intent"] = ""
        if new_state == State.ROLLING_BACK:
            fields.update(state=new_state, rollback_outcome=State.FAILED, failure_reason=failure)
        elif new_state:
            fields.update(state=new_state, finished_at=now)
        updated = Deployment.objects.filter(pk=d.pk, version=d.version).update(**fields)
        if not updated:
            return False
        for name, value in fields.items():
            setattr(d, name, value)
        Target.objects.filter(pk=d.target_id).update(
            observed=observed, observed_at=now, endpoint=endpoint
        )
        created = [
            _event(d, e.get("kind", "step"), e.get("message", ""), actor, e.get("data"))
            for e in new_events
        ]
        if new_state == State.ROLLING_BACK:
            created.append(_event(d, "failure", f"rolling back: {failure}", actor))
            audit.record(actor, "deployment.fail", d, {"reason": failure})
        elif new_state:
            created.append(_finish(d, new_state, actor))
        events.publish_deployment(d.pk, [e.pk for e in created])
    return True


def _finish(d: Deployment, state: str, actor: Actor) -> DeploymentEvent:
    """A deployment ended: on success the new release becomes the target's stable one."""
    if state == State.SUCCEEDED:
        Target.objects.filter(pk=d.target_id).update(
            stable_release=d.release_id, stable_slot=d.canary_slot
        )
        message = f"{d.release.version} is live on every instance"
    else:
        message = {
            State.ROLLED_BACK: "rolled back: every request is served by the stable release",
            State.ABORTED: "aborted: every request is served by the stable release",
            State.FAILED: f"failed and rolled back: {d.failure_reason}",
        }.get(state, state)
    audit.record(actor, f"deployment.{state}", d, {"version": d.release.version})
    return _event(d, "state", message, actor, {"state": state})


def record_integration_error(d: Deployment, message: str, *, permanent: bool) -> None:
    """A call to the target failed. Transient: note it once; permanent: fail and roll back."""
    actor = Actor.system()
    with transaction.atomic():
        if permanent and d.state != State.ROLLING_BACK:
            updated = Deployment.objects.filter(pk=d.pk, version=d.version).update(
                state=State.ROLLING_BACK,
                rollback_outcome=State.FAILED,
                failure_reason=message,
                message=message,
                version=d.version + 1,
                updated_at=timezone.now(),
            )
            if updated:
                event = _event(d, "failure", f"rolling back: {message}", actor)
                audit.record(actor, "deployment.fail", d, {"reason": message})
                events.publish_deployment(d.pk, [event.pk])
            return
        if d.message != message:
            updated = Deployment.objects.filter(pk=d.pk, version=d.version).update(
                message=message, version=d.version + 1, updated_at=timezone.now()
            )
            if updated:
                event = _event(d, "error", message, actor, {"permanent": permanent})
                events.publish_deployment(d.pk, [event.pk])
