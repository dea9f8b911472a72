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

from releases import audit, events, policy
from releases.actors import Actor
from releases.errors import (
    ApprovalRequired,
    Conflict,
    Forbidden,
    Frozen,
    InvalidRequest,
    InvalidSpec,
    NotFound,
)
from releases.models import (
    ACTIVE_STATES,
    Approval,
    Deployment,
    DeploymentEvent,
    Environment,
    FreezeOverride,
    Release,
    Service,
    State,
    Target,
)
from releases.models_governance import Decision
from strategies.spec import SpecError, normalise, rollback_spec_of

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
    # governance (releases.policy): a deployment waiting for approvals; approve/reject also
    # decide a canary step gate while progressing or paused (policy.open_gate says which)
    "approve": (State.AWAITING_APPROVAL,),
    "reject": (State.AWAITING_APPROVAL,),
}


# --- helpers ----------------------------------------------------------------------------------


def validate_strategy(raw: dict) -> dict:
    """Normalise a strategy spec or raise InvalidSpec listing every bad field (an analysis
    template it names that does not exist, or whose arguments do not fit, among them)."""
    if not isinstance(raw, dict):
        raise InvalidSpec(
            "The strategy must be a JSON object.",
            details={"errors": [{"path": "", "message": "must be an object"}]},
        )
    try:
        return normalise(raw, templates=_check_analysis_template)
    except SpecError as exc:
        errors = [{"path": e.path, "message": e.message} for e in exc.errors]
        first = errors[0] if errors else {"path": "", "message": str(exc)}
        where = f" at {first['path']}" if first["path"] else ""
        raise InvalidSpec(
            f"The strategy is invalid{where}: {first['message']}"
            + (f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""),
            details={"errors": errors},
        ) from None


def _check_analysis_template(name: str, args: dict[str, str]) -> list[tuple[str, str]]:
    """What is wrong with running the analysis template ``name`` with ``args`` (a spec's
    analysis reference): [(path under the reference, message)], [] if it can run."""
    from releases.models_analysis import AnalysisTemplate
    from strategies.analysis.template import TemplateError, resolve_args
    from strategies.analysis.template import normalise as normalise_template

    template = AnalysisTemplate.objects.filter(name=name).first()
    if template is None:
        return [
            (
                "template",
                f"there is no analysis template {name!r} (create it with PUT "
                f"/api/v1/analysis-templates/{name})",
            )
        ]
    try:
        resolve_args(normalise_template(template.spec), args)
    except TemplateError as exc:
        return [(error.path, error.message) for error in exc.errors]
    return []


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
    if d.state == State.AWAITING_APPROVAL and command in ("promote", "resume"):
        status = policy.approval_status(d)
        raise ApprovalRequired(
            f"Cannot {command} deployment {d.pk}: it is awaiting approval "
            f"({status.summary()}); an approver must approve it first.",
            details={
                "state": d.state,
                "required": status.required,
                "approved_by": status.approved_by,
            },
        )
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
    policy.require(actor, "release.create", service)
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
    override_freeze: str | None = None,
) -> tuple[Deployment, bool]:
    """Create a deployment of ``version`` to ``service`` in ``environment``.

    Returns (deployment, created). A repeated ``idempotency_key`` returns the first deployment.
    Needs the deployer role there. During a freeze window it raises Frozen, unless an admin
    gives ``override_freeze`` (a written reason, audited and shown on the deployment). When the
    environment's policy requires approvals it starts in ``awaiting_approval``.
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
    spec = resolve_strategy(target, strategy)
    overriding = _freeze_check(actor, target, override_freeze)
    return _create_deployment(
        actor,
        target=target,
        release=release,
        spec=spec,
        reason=reason,
        idempotency_key=idempotency_key,
        awaiting=policy.needs_approval(target),
        override=(overriding, override_freeze) if overriding else None,
    ), True


def _freeze_check(actor: Actor, target: Target, override_freeze: str | None):
    """None when no freeze window is in force on ``target``; the window being overridden when an
    admin gives a written reason; Frozen otherwise (naming the window and when it lifts)."""
    if override_freeze is not None and not override_freeze.strip():
        raise InvalidRequest(
            "A freeze override needs a written reason: say why this cannot wait.",
            details={"field": "override_freeze"},
        )
    active = policy.active_freeze(target)
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
        raise Forbidden(
            f"{active.message}. Only an admin may override a freeze: {exc.message}",
            details={**active.details(), **exc.details},
        ) from None
    return active


def _record_override(actor: Actor, d: Deployment, active, reason: str) -> DeploymentEvent:
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
        {"window": w.name, "window_id": w.pk, "until": active.until.isoformat(), "reason": reason},
    )
    return _event(
        d,
        "freeze_override",
        f"{actor.name} overrode the freeze {w.name!r}: {reason}",
        actor,
        {"window": w.name, "reason": reason},
    )


def _create_deployment(
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
) -> Deployment:
    previous = target.stable_release.version if target.stable_release_id else "nothing"
    try:
        with transaction.atomic():
            d = Deployment.objects.create(
                target=target,
                release=release,
                from_release=target.stable_release,
                rollback_of=rollback_of,
                state=State.AWAITING_APPROVAL if awaiting else State.PENDING,
                strategy=spec,
                stable_slot=target.stable_slot,
                canary_slot=_other_slot(target.stable_slot),
                reason=reason,
                created_by=actor.user,
                created_via=actor.channel,
                idempotency_key=idempotency_key,
                next_tick_at=None if awaiting else timezone.now(),
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
            published = [event.pk]
            if override is not None:
                published.append(_record_override(actor, d, *override).pk)
            if awaiting:
                required = policy.policy_for(target.environment).required_approvals
                published.append(
                    _event(
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
        policy.require(actor, "deployment.promote", d)
        _check_allowed(d, "promote")
        _check_step_gates(d, full=full)
        intent = "promote_full" if full else "promote"
        # a person's promote is no automatic promotion: a freeze does not hold this step's end
        checks = {**(d.checks or {}), "promoted_at_step": d.step_index}
        _save(d, intent=intent, state=State.PROGRESSING, next_tick_at=timezone.now(), checks=checks)
        what = "promote fully (skip to 100%)" if full else "promote to the next step"
        event = _event(d, "intent", f"{actor.name} asked to {what}", actor, {"intent": intent})
        audit.record(actor, f"deployment.{intent}", d, {"state": d.state})
        events.publish_deployment(d.pk, [event.pk])
        _enqueue_tick(d.pk)
    return d


def pause(actor: Actor, deployment_id: int) -> Deployment:
    with transaction.atomic():
        d = _locked(deployment_id)
        policy.require(actor, "deployment.pause", d)
        _check_allowed(d, "pause")
        _save(d, state=State.PAUSED)
        event = _event(d, "state", f"{actor.name} paused the deployment", actor, {"state": d.state})
        audit.record(actor, "deployment.pause", d)
        events.publish_deployment(d.pk, [event.pk])
    return d


def resume(actor: Actor, deployment_id: int) -> Deployment:
    with transaction.atomic():
        d = _locked(deployment_id)
        policy.require(actor, "deployment.resume", d)
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
        policy.require(actor, "deployment.rollback", d)  # never blocked by a freeze
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
    """The fastest safe way back to the previous release (``strategies.spec.rollback_spec_of``):
    all old instances up at once, then traffic moved; a blue-green switch for blue-green and
    canary deployments, a fast rolling update for the others."""
    return validate_strategy(rollback_spec_of(spec))


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
    )
    with transaction.atomic():
        event = _event(
            d, "retry", f"{actor.name} retried it as deployment #{new.pk}", actor, {"retry": new.pk}
        )
        audit.record(actor, "deployment.retry", d, {"retry": new.pk})
        events.publish_deployment(d.pk, [event.pk])
    return new


def _begin_rollback(actor, deployment_id, command, outcome, reason) -> Deployment:
    with transaction.atomic():
        d = _locked(deployment_id)
        policy.require(actor, f"deployment.{command}", d)  # never blocked by a freeze
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


# --- approvals (releases.policy decides; these record) -----------------------------------------


def _check_step_gates(d: Deployment, *, full: bool) -> None:
    """A promote may not skip a canary step gate that has not been approved (a full promote may
    skip none of the gates ahead)."""
    steps = (d.strategy or {}).get("steps") or []
    indexes = range(d.step_index, max(len(steps), d.step_index + 1)) if full else [d.step_index]
    for index in indexes:
        if policy.requires_step_approval(d, index) and not policy.step_approved(d, index):
            status = policy.approval_status(d, index)
            raise ApprovalRequired(
                f"Cannot promote deployment {d.pk}: step {index + 1} waits for an approval "
                f"({status.summary()}); an approver must approve it first.",
                details={"step": index, "required": status.required},
            )


def approve(
    actor: Actor, deployment_id: int, *, comment: str = "", override_freeze: str | None = None
) -> Deployment:
    """Approve a deployment awaiting approval, or the canary step gate it waits at.

    Needs the policy's approver role (default: approver) and, unless the policy allows it,
    someone other than who started it. Each person counts once, while their approval has not
    expired. With enough approvals an awaiting deployment goes ``pending`` and a tick is
    enqueued -- unless a freeze is in force, which raises Frozen (an admin may approve with
    ``override_freeze``); an approved step gate lets the next tick run the step."""
    comment = (comment or "").strip()
    with transaction.atomic():
        d = _locked(deployment_id)
        policy.require(actor, "deployment.view", d)
        gate = policy.open_gate(d)
        role = policy.check_approver(actor, d)  # the role, four eyes
        now = timezone.now()
        mine = Approval.objects.filter(
            deployment=d, step_index=gate, user=actor.user, decision=Decision.APPROVE
        )
        if any(not a.is_expired(now) for a in mine):
            raise Conflict(
                f"You have already approved deployment {d.pk}; another approver is needed.",
                details={"deployment": d.pk},
            )
        ttl = policy.policy_for(d.target.environment).approval_ttl
        Approval.objects.create(
            deployment=d,
            user=actor.user,
            actor_name=actor.name[:150],
            decision=Decision.APPROVE,
            comment=comment,
            step_index=gate,
            role=role,
            channel=actor.channel,
            created_at=now,
            expires_at=now + ttl if ttl else None,
        )
        status = policy.approval_status(d, gate, now)
        where = "" if gate is None else f" step {gate + 1}"
        created = [
            _event(
                d,
                "approval",
                f"{actor.name} approved{where} ({status.summary()})"
                + (f": {comment}" if comment else ""),
                actor,
                {"decision": "approve", "step": gate, "comment": comment},
            )
        ]
        audit.record(
            actor,
            "deployment.approve",
            d,
            {
                "comment": comment,
                "step": gate,
                "approved_by": status.approved_by,
                "required": status.required,
            },
        )
        if status.satisfied and gate is None:
            if not FreezeOverride.objects.filter(deployment=d).exists():
                overriding = _freeze_check(actor, d.target, override_freeze)
                if overriding:
                    created.append(_record_override(actor, d, overriding, override_freeze))
            _save(d, state=State.PENDING, next_tick_at=now)
            created.append(
                _event(d, "state", "approved: the rollout starts", actor, {"state": d.state})
            )
            _enqueue_tick(d.pk)
        elif status.satisfied:
            _save(d, next_tick_at=now)
            created.append(
                _event(d, "approval", f"step {gate + 1} approved: the rollout continues", actor)
            )
            _enqueue_tick(d.pk)
        events.publish_deployment(d.pk, [e.pk for e in created])
    return d


def reject(actor: Actor, deployment_id: int, *, comment: str = "") -> Deployment:
    """Reject a deployment awaiting approval (it ends ``rejected`` at once), or the canary step
    gate it waits at (traffic goes back to the stable release, then it ends ``rejected``)."""
    comment = (comment or "").strip()
    with transaction.atomic():
        d = _locked(deployment_id)
        policy.require(actor, "deployment.view", d)
        gate = policy.open_gate(d)
        policy.require(actor, "deployment.reject", d)
        now = timezone.now()
        Approval.objects.create(
            deployment=d,
            user=actor.user,
            actor_name=actor.name[:150],
            decision=Decision.REJECT,
            comment=comment,
            step_index=gate,
            role=policy.role_for(actor.user, d) or "" if actor.user else "",
            channel=actor.channel,
            created_at=now,
        )
        audit.record(actor, "deployment.reject", d, {"comment": comment, "step": gate})
        said = f": {comment}" if comment else ""
        if gate is None:
            _save(d, state=State.REJECTED, finished_at=now, intent="")
            message = f"{actor.name} rejected the deployment{said}"
        else:
            _save(
                d,
                state=State.ROLLING_BACK,
                rollback_outcome=State.REJECTED,
                intent="",
                next_tick_at=now,
            )
            message = (
                f"{actor.name} rejected step {gate + 1}{said}: sending traffic back to the "
                "stable release"
            )
            _enqueue_tick(d.pk, priority=True)
        event = _event(
            d, "state", message, actor, {"state": d.state, "comment": comment, "step": gate}
        )
        events.publish_deployment(d.pk, [event.pk])
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
        audit.record(Actor.system(), "deployment.start", d, {"state": d.state})
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
    checks: dict | None = None,
    cleanup_in: float | None = None,
) -> bool:
    """Store what a tick saw and did. Version-checked: if an operator command landed during the
    tick, nothing is written (the next tick decides again from the new state) and False returns.

    ``new_state`` paused means a step waits for a person to promote (progressing -> paused);
    ``checks`` replaces the check results handed to the next tick; ``cleanup_in`` (seconds, with a
    terminal ``new_state``) schedules the scale-down of the slot kept after a rollback.
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
        if checks is not None:
            fields["checks"] = checks
        if new_state == State.ROLLING_BACK:
            fields.update(state=new_state, rollback_outcome=State.FAILED, failure_reason=failure)
        elif new_state == State.PAUSED:
            fields.update(state=new_state)
        elif new_state:
            fields.update(state=new_state, finished_at=now)
            if cleanup_in is not None:
                fields["cleanup_at"] = now + timedelta(seconds=cleanup_in)
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
        elif new_state == State.PAUSED:
            created.append(
                _event(
                    d,
                    "state",
                    "waiting for promotion: promote to continue",
                    actor,
                    {"state": new_state, "waiting_for_promotion": True},
                )
            )
            audit.record(actor, "deployment.wait_for_promotion", d, {"step": step[:300]})
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
            State.REJECTED: "rejected at a step gate: every request is served by the stable "
            "release",
        }.get(state, state)
    audit.record(actor, f"deployment.{state}", d, {"version": d.release.version})
    return _event(d, "state", message, actor, {"state": state})


def record_hold(d: Deployment, *, step_index: int, message: str) -> bool:
    """The environment's policy holds the next step (a freeze window, a step gate waiting for an
    approval): note where and why, once (an event when the reason changes, not every tick).
    Version-checked like ``record_tick``; the engine's progress is left as it was."""
    if d.step_index == step_index and d.message == message:
        return True
    with transaction.atomic():
        updated = Deployment.objects.filter(pk=d.pk, version=d.version).update(
            step_index=step_index, message=message, version=d.version + 1, updated_at=timezone.now()
        )
        if not updated:
            return False
        d.step_index, d.message, d.version = step_index, message, d.version + 1
        event = _event(d, "hold", message, Actor.system())
        events.publish_deployment(d.pk, [event.pk])
    return True


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


# --- scaling down a slot kept after a rollback (releases.cleanup) ------------------------------

CLEANUP_RETRY_SECONDS = 60


def claim_cleanup(deployment_id: int) -> Deployment | None:
    """Take a due cleanup: push ``cleanup_at`` on (so a concurrent sweep skips it, and a worker
    that dies mid-way is retried later). None if it is not due or someone else took it."""
    now = timezone.now()
    d = (
        Deployment.objects.select_related("target__service", "target__environment")
        .filter(pk=deployment_id, cleanup_at__lte=now)
        .first()
    )
    if d is None:
        return None
    taken = Deployment.objects.filter(pk=d.pk, cleanup_at=d.cleanup_at).update(
        cleanup_at=now + timedelta(seconds=CLEANUP_RETRY_SECONDS)
    )
    return d if taken else None


def record_cleanup(d: Deployment, message: str, *, observed: dict | None = None) -> None:
    """The kept slot was scaled down (or is now another deployment's): nothing more to do."""
    actor = Actor.system()
    with transaction.atomic():
        Deployment.objects.filter(pk=d.pk).update(cleanup_at=None)
        d.cleanup_at = None
        if observed is not None:
            Target.objects.filter(pk=d.target_id).update(
                observed=observed, observed_at=timezone.now()
            )
        event = _event(d, "cleanup", message, actor, {"slot": d.canary_slot})
        events.publish_deployment(d.pk, [event.pk])
