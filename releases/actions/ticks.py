"""What the reconcile loop records through actions: claiming a deployment (a lease by
conditional update), a tick's result (step, weights, state, the next tick), holds, integration
errors, and the cleanup of a slot kept after a rollback. Version-checked: a tick that lost a
race with an operator's click records nothing and ticks again."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from releases import audit
from releases.actions.common import LEASE_SECONDS, locked, record_event, save_checked
from releases.actors import Actor
from releases.errors import NotFound
from releases.live import events
from releases.models import (
    ACTIVE_STATES,
    Deployment,
    DeploymentEvent,
    State,
    Target,
)

# --- the reconcile loop's commands ------------------------------------------------------------


def claim(deployment_id: int, owner: str, *, due: datetime | None = None) -> Deployment | None:
    """Take the deployment's lease if it is active and free; None if another worker holds it.

    Each claim bumps ``lease_generation``, the fencing token the tick sends with its routing and
    scale calls (``releases.reconcile.lease``). The lease is short (``LEASE_SECONDS``) and renewed
    by the tick's heartbeat (``renew_claim``): a dead owner's claim lapses in a second or two.

    ``due``: the tick was scheduled for that ``next_tick_at`` (``release_claim`` returns it, the
    queue carries it): if the row's is another, a later tick has run since and scheduled its own
    successor, so this one is stale and claims nothing. One chain of ticks per deployment,
    however many copies of a tick the sweep or a redelivery put on the queue."""
    now = timezone.now()
    rows = Deployment.objects.filter(pk=deployment_id, state__in=ACTIVE_STATES)
    if due is not None:
        rows = rows.filter(next_tick_at=due)
    taken = (
        rows.exclude(state=State.AWAITING_APPROVAL)
        .exclude(lease_until__gt=now)
        .update(
            lease_owner=owner,
            lease_until=now + timedelta(seconds=LEASE_SECONDS),
            lease_generation=F("lease_generation") + 1,
        )
    )
    if not taken:
        return None
    return (
        Deployment.objects.select_related(
            "target__service", "target__environment", "release", "from_release"
        )
        .filter(pk=deployment_id, lease_owner=owner)  # not lapsed and taken again meanwhile
        .first()
    )


def renew_claim(deployment_id: int, owner: str, generation: int) -> bool:
    """Extend the lease ``owner`` holds with ``generation``; False if it is no longer theirs."""
    until = timezone.now() + timedelta(seconds=LEASE_SECONDS)
    return bool(
        Deployment.objects.filter(
            pk=deployment_id, lease_owner=owner, lease_generation=generation
        ).update(lease_until=until)
    )


def release_claim(
    deployment_id: int, owner: str, *, wait: float | None
) -> tuple[int | None, datetime | None]:
    """Give the lease back and set when the next tick is due. Returns the row's version and, if
    this released it with a ``wait``, the ``next_tick_at`` it set (what the next tick claims
    with: ``claim(due=...)``)."""
    fields = {"lease_owner": "", "lease_until": None}
    if wait is not None:
        fields["next_tick_at"] = timezone.now() + timedelta(seconds=wait)
    released = Deployment.objects.filter(pk=deployment_id, lease_owner=owner).update(**fields)
    version = Deployment.objects.filter(pk=deployment_id).values_list("version", flat=True).first()
    return version, fields.get("next_tick_at") if released else None


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
        event = record_event(d, "state", "rollout started", Actor.system(), {"state": d.state})
        audit.record(Actor.system(), "deployment.start", d, {"state": d.state})
        events.publish_deployment(d.pk, [event.pk])
    return True


# in ``progress`` while a step (not a person's Pause) holds the rollout: why it waits
WAITING_KEY = "waiting_for_promotion"


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
    window_seconds: float = 0,
) -> bool:
    """Store what a tick saw and did. Version-checked: if an operator command landed during the
    tick, nothing is written (the next tick decides again from the new state) and False returns.

    ``new_state`` paused means a step waits for a person to promote (progressing -> paused);
    ``checks`` replaces the check results handed to the next tick; ``cleanup_in`` (seconds, with a
    terminal ``new_state``) schedules the scale-down of the slot kept after a rollback;
    ``window_seconds`` (with ``new_state`` succeeded) opens the rollback window
    (``releases.actions.window``): the previous release's slot stays warm that long.
    """
    actor = Actor.system()
    now = timezone.now()
    progress = dict(progress)
    if new_state == State.PAUSED:
        # the page says why it waits (releases.live.presenters.pause_dict), not "an operator"
        progress[WAITING_KEY] = message or "waiting for promotion"
    elif d.state != State.PAUSED:
        progress.pop(WAITING_KEY, None)
    with transaction.atomic():
        fields = {
            "progress": progress,
            "step_index": step_index,
            "step": step[:300],
            "weights": weights,
            "message": message,
            "tick_failures": 0,  # a tick that records ends a run of failures
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
            if new_state == State.SUCCEEDED and window_seconds > 0:
                fields["window_until"] = now + timedelta(seconds=window_seconds)
        updated = _held(d).update(**fields)
        if not updated:
            return False
        for name, value in fields.items():
            setattr(d, name, value)
        Target.objects.filter(pk=d.target_id).update(
            observed=observed, observed_at=now, endpoint=endpoint
        )
        created = [
            record_event(d, e.get("kind", "step"), e.get("message", ""), actor, e.get("data"))
            for e in new_events
        ]
        if new_state == State.ROLLING_BACK:
            created.append(record_event(d, "failure", f"rolling back: {failure}", actor))
            audit.record(actor, "deployment.fail", d, {"reason": failure})
        elif new_state == State.PAUSED:
            created.append(
                record_event(
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
            if d.window_until is not None and new_state == State.SUCCEEDED:
                created.append(_window_opened(d, actor, window_seconds))
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
    return record_event(d, "state", message, actor, {"state": state})


def _window_opened(d: Deployment, actor: Actor, seconds: float) -> DeploymentEvent:
    version = d.from_release.version if d.from_release_id else "?"
    message = (
        f"rollback window open until {d.window_until:%H:%M:%S} UTC ({seconds:g}s): "
        f"{version} stays warm at 0% traffic in slot {d.stable_slot}; a rollback until then "
        "is a switch back"
    )
    return record_event(
        d,
        "window",
        message,
        actor,
        {"slot": d.stable_slot, "until": d.window_until.isoformat(), "version": version},
    )


def record_hold(d: Deployment, *, step_index: int, message: str) -> bool:
    """The environment's policy holds the next step (a freeze window, a step gate waiting for an
    approval): note where and why, once (an event when the reason changes, not every tick).
    Version-checked like ``record_tick``; the engine's progress is left as it was."""
    if d.step_index == step_index and d.message == message and not d.tick_failures:
        return True
    with transaction.atomic():
        updated = _held(d).update(
            step_index=step_index,
            message=message,
            tick_failures=0,
            version=d.version + 1,
            updated_at=timezone.now(),
        )
        if not updated:
            return False
        d.step_index, d.message, d.version = step_index, message, d.version + 1
        event = record_event(d, "hold", message, Actor.system())
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
                event = record_event(d, "failure", f"rolling back: {message}", actor)
                audit.record(actor, "deployment.fail", d, {"reason": message})
                events.publish_deployment(d.pk, [event.pk])
            return
        if d.message != message:
            updated = Deployment.objects.filter(pk=d.pk, version=d.version).update(
                message=message, version=d.version + 1, updated_at=timezone.now()
            )
            if updated:
                event = record_event(d, "error", message, actor, {"permanent": permanent})
                events.publish_deployment(d.pk, [event.pk])


def _held(d: Deployment):
    """The row as the tick read it, and -- when the tick holds a lease -- still its own: a tick
    whose lease lapsed and was taken by another worker writes nothing."""
    rows = Deployment.objects.filter(pk=d.pk, version=d.version)
    return rows.filter(lease_owner=d.lease_owner) if d.lease_owner else rows


def record_tick_failure(
    d: Deployment, exc: BaseException, *, retry_in: float, max_attempts: int
) -> str | None:
    """A tick failed with an unexpected error (a bug, not an ``IntegrationError``): an event names
    the error's class and message, and the row counts the failures in a row. The last allowed
    attempt fails the deployment: a forward or paused rollout rolls back with that reason; a
    rollback that cannot complete ends failed. Under a short row lock (the count and the state
    are read and written together, whatever an operator did meanwhile).

    Returns the state the deployment is in afterwards (None if it is gone or no longer active).
    """
    actor = Actor.system()
    error = type(exc).__name__
    text = f"{error}: {str(exc)[:500]}"
    owner = d.lease_owner
    with transaction.atomic():
        try:
            d = locked(d.pk)
        except NotFound:
            return None
        if d.state not in ACTIVE_STATES:
            return None
        if owner and d.lease_owner != owner:
            return d.state  # another worker has it now: not this tick's to count
        attempt = d.tick_failures + 1
        final = attempt >= max_attempts
        fields = {"tick_failures": attempt}
        if not final:
            fields["message"] = f"tick failed ({attempt} of {max_attempts}), retrying: {text}"
        elif d.state != State.ROLLING_BACK:
            reason = f"{text} ({attempt} ticks in a row failed)"
            fields.update(
                state=State.ROLLING_BACK,
                rollback_outcome=State.FAILED,
                failure_reason=reason,
                message=reason,
            )
        else:
            reason = f"rollback could not complete: {text} ({attempt} ticks in a row failed)"
            fields.update(
                state=State.FAILED,
                failure_reason=reason,
                message=reason,
                finished_at=timezone.now(),
            )
        save_checked(d, **fields)
        data = {
            "error": error,
            "message": str(exc)[:500],
            "attempt": attempt,
            "max_attempts": max_attempts,
            "retry_in": None if final else round(retry_in, 3),
        }
        created = [
            record_event(
                d, "error", f"tick {attempt} of {max_attempts} failed: {text}", actor, data
            )
        ]
        if final and d.state == State.ROLLING_BACK:
            created.append(record_event(d, "failure", f"rolling back: {d.failure_reason}", actor))
            audit.record(actor, "deployment.fail", d, {"reason": d.failure_reason})
        elif final:
            created.append(
                record_event(d, "state", f"failed: {d.failure_reason}", actor, {"state": d.state})
            )
            audit.record(actor, "deployment.failed", d, {"reason": d.failure_reason})
        events.publish_deployment(d.pk, [e.pk for e in created])
    return d.state


# --- scaling down a slot kept after a rollback (releases.reconcile.cleanup) -----------------------

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
        event = record_event(d, "cleanup", message, actor, {"slot": d.canary_slot})
        events.publish_deployment(d.pk, [event.pk])


def record_observed(target_id: int, observed: dict, *, endpoint: str = "") -> bool:
    """A target looked at again after its deployment ended (``releases.reconcile.observe``):
    store the picture and show it on its latest deployment's page and the board."""
    with transaction.atomic():
        fields = {"observed": observed, "observed_at": timezone.now()}
        if endpoint:
            fields["endpoint"] = endpoint
        if not Target.objects.filter(pk=target_id).update(**fields):
            return False
        latest = Deployment.objects.filter(target_id=target_id).order_by("-id").first()
        if latest is not None:
            events.publish_deployment(latest.pk)
    return True
