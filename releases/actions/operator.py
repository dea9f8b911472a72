"""The operator commands: promote, pause, resume, abort, rollback. Each records intent on the
row and asks for a tick at once; the reconcile loop carries it out. Rollback and abort use
the priority queue and are never held by a freeze."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from releases import audit
from releases.actions import window
from releases.actions.approvals import check_step_gates
from releases.actions.common import check_allowed, enqueue_tick, locked, record_event, save_checked
from releases.actions.start import create_deployment
from releases.actions.strategy import validate_strategy
from releases.actors import Actor
from releases.errors import (
    Conflict,
)
from releases.governance import policy
from releases.live import events
from releases.models import (
    Deployment,
    State,
    Target,
)
from strategies.spec import rollback_spec_of, switch_back_spec_of

# --- operator commands ------------------------------------------------------------------------


def promote(actor: Actor, deployment_id: int, *, full: bool = False) -> Deployment:
    """Finish the current pause (or, with ``full``, go straight to 100%). Resumes if paused."""
    with transaction.atomic():
        d = locked(deployment_id)
        policy.require(actor, "deployment.promote", d)
        check_allowed(d, "promote")
        check_step_gates(d, full=full)
        intent = "promote_full" if full else "promote"
        # a person's promote is no automatic promotion: a freeze does not hold this step's end
        checks = {**(d.checks or {}), "promoted_at_step": d.step_index}
        save_checked(
            d, intent=intent, state=State.PROGRESSING, next_tick_at=timezone.now(), checks=checks
        )
        what = "promote fully (skip to 100%)" if full else "promote to the next step"
        event = record_event(
            d, "intent", f"{actor.name} asked to {what}", actor, {"intent": intent}
        )
        audit.record(actor, f"deployment.{intent}", d, {"state": d.state})
        events.publish_deployment(d.pk, [event.pk])
        enqueue_tick(d.pk)
    return d


def pause(actor: Actor, deployment_id: int) -> Deployment:
    with transaction.atomic():
        d = locked(deployment_id)
        policy.require(actor, "deployment.pause", d)
        check_allowed(d, "pause")
        progress = {k: v for k, v in (d.progress or {}).items() if k != "waiting_for_promotion"}
        save_checked(d, state=State.PAUSED, progress=progress)  # a person's pause, not a step's
        event = record_event(
            d, "state", f"{actor.name} paused the deployment", actor, {"state": d.state}
        )
        audit.record(actor, "deployment.pause", d)
        events.publish_deployment(d.pk, [event.pk])
    return d


def resume(actor: Actor, deployment_id: int) -> Deployment:
    with transaction.atomic():
        d = locked(deployment_id)
        policy.require(actor, "deployment.resume", d)
        check_allowed(d, "resume")
        save_checked(d, state=State.PROGRESSING, next_tick_at=timezone.now())
        event = record_event(
            d, "state", f"{actor.name} resumed the deployment", actor, {"state": d.state}
        )
        audit.record(actor, "deployment.resume", d)
        events.publish_deployment(d.pk, [event.pk])
        enqueue_tick(d.pk)
    return d


def abort(actor: Actor, deployment_id: int, *, reason: str = "") -> Deployment:
    """Stop the rollout and send all traffic back to the stable release; ends ``aborted``."""
    return _begin_rollback(actor, deployment_id, "abort", State.ABORTED, reason)


def rollback(actor: Actor, deployment_id: int, *, reason: str = "") -> Deployment:
    """Roll back an active deployment, or roll a succeeded one back to the previous release
    (which starts a new deployment of that release, returned here). Inside the rollback window
    (``releases.actions.window``) that deployment is a switch back to the previous release's
    warm slot; outside it, a redeploy."""
    with transaction.atomic():
        d = locked(deployment_id)
        policy.require(actor, "deployment.rollback", d)  # never blocked by a freeze
        check_allowed(d, "rollback")
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
        warm = window.is_open(d)  # the previous release is warm in the other slot
        if warm:
            spec = validate_strategy(switch_back_spec_of(d.strategy))
            how = "switch back"
        else:
            spec = rollback_spec(d.strategy)
            how = "redeploy"
        return create_deployment(
            actor,
            target=target,
            release=d.from_release,
            spec=spec,
            reason=reason or f"roll back deployment #{d.pk} ({d.release.version}): {how}",
            rollback_of=d,
            started=warm,  # its first tick routes, without recording the start first
        )


def rollback_spec(spec: dict) -> dict:
    """The fastest safe way back to the previous release (``strategies.spec.rollback_spec_of``):
    all old instances up at once, then traffic moved; a blue-green switch for blue-green and
    canary deployments, a fast rolling update for the others."""
    return validate_strategy(rollback_spec_of(spec))


def _begin_rollback(actor, deployment_id, command, outcome, reason) -> Deployment:
    with transaction.atomic():
        d = locked(deployment_id)
        policy.require(actor, f"deployment.{command}", d)  # never blocked by a freeze
        check_allowed(d, command)
        if d.state == State.AWAITING_APPROVAL:  # nothing was deployed: end at once
            save_checked(d, state=outcome, finished_at=timezone.now(), intent="")
            kind_msg = f"{actor.name} {'aborted' if command == 'abort' else 'rolled back'}"
        else:
            save_checked(
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
        event = record_event(d, "state", kind_msg, actor, {"state": d.state, "reason": reason})
        audit.record(actor, f"deployment.{command}", d, {"reason": reason})
        events.publish_deployment(d.pk, [event.pk])
        enqueue_tick(d.pk, priority=True)
    return d
