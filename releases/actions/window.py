"""The rollback window (docs/loop.md): after a rolling, canary or blue-green deployment succeeds,
the previous release's slot stays warm at 0% traffic for the environment's ``rollback_window``
seconds, so rolling that deployment back is a switch back, not a redeploy.

The window is ``Deployment.window_until`` on the deployment that succeeded; the warm slot is its
``stable_slot`` (the previous release's), the live one its ``canary_slot``. It opens when the
tick records the success (``opens_window`` says whether it may: the kind, the environment's
setting, a provider that can hold a second slot -- ``integrations.registry.holds_warm_slot`` -- and
an earlier release to keep; a rollback never opens one). It closes when:

- its time is up: the periodic sweep hands it to ``releases.reconcile.cleanup``, which retires the
  warm slot (``claim_window_end`` / ``record_window_end`` here);
- an operator ends it early (``end_window``: role-checked, audited; the cleanup runs at once);
- a new deployment starts on the target (``close_for``, from ``start.create_deployment``): it
  takes the other slot, the warm one -- a rollback inside the window *is* that deployment, and
  finds the previous release already running there.
"""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from integrations import registry
from releases import audit, queue
from releases.actions.common import locked, record_event, save_checked
from releases.actors import Actor
from releases.errors import Conflict
from releases.governance import policy
from releases.live import events
from releases.models import Deployment, State, Target
from strategies.engine import WINDOW_KINDS

WINDOW_RETRY_SECONDS = 60  # a retirement that failed (or a worker that died mid-way) is retried


def window_seconds(d: Deployment) -> int:
    """How long ``d`` keeps the previous release warm once it succeeds; 0: no window (recreate,
    a rollback, a first deployment, the environment's window is off, or the provider cannot
    hold a second slot)."""
    target = d.target
    if (
        d.rollback_of_id is not None
        or d.from_release_id is None
        or (d.strategy or {}).get("kind") not in WINDOW_KINDS
    ):
        return 0
    if not registry.holds_warm_slot(target.provider, target.config or {}):
        return 0
    return int(target.environment.rollback_window or 0)


def is_open(d: Deployment, now=None) -> bool:
    """Whether ``d`` succeeded and its previous release is still warm (its window is open)."""
    now = now or timezone.now()
    return d.state == State.SUCCEEDED and d.window_until is not None and d.window_until > now


def end_window(actor: Actor, deployment_id: int, *, reason: str = "") -> Deployment:
    """End ``deployment_id``'s rollback window now: its warm slot is retired at once (the cleanup
    task is asked for after commit) and a rollback from then on redeploys. Needs the deployer
    role there (``deployment.end_window``); audited."""
    with transaction.atomic():
        d = locked(deployment_id)
        policy.require(actor, "deployment.end_window", d)
        if not is_open(d):
            raise Conflict(
                f"Deployment {d.pk} has no open rollback window"
                + (f" (it is {d.state})." if d.state != State.SUCCEEDED else "."),
                details={"state": d.state},
            )
        now = timezone.now()
        held = d.window_until
        save_checked(d, window_until=now)  # due: the cleanup retires the warm slot
        message = f"{actor.name} ended the rollback window early: slot {d.stable_slot} is retired"
        if reason:
            message += f" ({reason})"
        event = record_event(
            d, "window", message, actor, {"slot": d.stable_slot, "was_until": held.isoformat()}
        )
        audit.record(
            actor,
            "deployment.end_window",
            d,
            {"slot": d.stable_slot, "was_until": held.isoformat(), "reason": reason},
        )
        events.publish_deployment(d.pk, [event.pk])
        transaction.on_commit(lambda: queue.enqueue_cleanup(d.pk))
    return d


def close_for(target: Target, new: Deployment, actor: Actor) -> list[int]:
    """A new deployment on ``target`` takes the warm slot: the window closes (nothing to retire:
    the slot is the new deployment's now). In the caller's transaction; returns event ids."""
    created = []
    for d in Deployment.objects.filter(target=target, window_until__isnull=False).exclude(
        pk=new.pk
    ):
        Deployment.objects.filter(pk=d.pk).update(window_until=None)
        if new.rollback_of_id == d.pk:
            message = (
                f"rolled back inside the rollback window: deployment #{new.pk} switches back to "
                f"{new.release.version}, warm in slot {d.stable_slot}"
            )
        else:
            message = f"the rollback window closed: deployment #{new.pk} takes slot {d.stable_slot}"
        created.append(record_event(d, "window", message, actor, {"deployment": new.pk}).pk)
        events.publish_deployment(d.pk, created[-1:])
    return created


# --- retiring the warm slot when the window ends (releases.reconcile.cleanup) ------------------


def due_windows() -> list[int]:
    """Succeeded deployments whose rollback window is over (its warm slot to retire)."""
    return list(
        Deployment.objects.filter(
            window_until__lte=timezone.now(), state=State.SUCCEEDED
        ).values_list("pk", flat=True)
    )


def claim_window_end(deployment_id: int) -> Deployment | None:
    """Take a window that is over: push ``window_until`` on (a concurrent sweep skips it, and a
    worker that dies mid-way is retried later). None if it is not over or someone took it."""
    now = timezone.now()
    d = (
        Deployment.objects.select_related(
            "target__service", "target__environment", "release", "from_release"
        )
        .filter(pk=deployment_id, window_until__lte=now, state=State.SUCCEEDED)
        .first()
    )
    if d is None:
        return None
    taken = Deployment.objects.filter(pk=d.pk, window_until=d.window_until).update(
        window_until=now + timedelta(seconds=WINDOW_RETRY_SECONDS)
    )
    return d if taken else None


def record_window_end(d: Deployment, message: str, *, observed: dict | None = None) -> None:
    """The warm slot was retired (or is another deployment's now): the window is over."""
    actor = Actor.system()
    with transaction.atomic():
        Deployment.objects.filter(pk=d.pk).update(window_until=None)
        d.window_until = None
        if observed is not None:
            Target.objects.filter(pk=d.target_id).update(
                observed=observed, observed_at=timezone.now()
            )
        event = record_event(d, "window", message, actor, {"slot": d.stable_slot})
        events.publish_deployment(d.pk, [event.pk])
