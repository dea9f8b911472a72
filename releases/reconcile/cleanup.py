"""Scaling down the new release's slot that a blue-green or canary rollback kept for inspection.

A rollback of those kinds ends as soon as every request is on the old release, leaving the new
release's instances up (``Deployment.cleanup_at`` says until when). The periodic sweep enqueues
``releases.reconcile.tasks.cleanup_slot`` for each due one; ``clean_up`` removes the slot unless
another
deployment on the target is active (it owns both slots now: a retry may even reuse the instances).
The slot is removed after the lease-like claim in ``actions.claim_cleanup`` and outside any
transaction; a transient integration error leaves the cleanup due again a minute later.

The same sweep ends rollback windows (``releases.actions.window``): when a succeeded deployment's
``window_until`` has passed (or an operator ended it early), ``retire_warm_slot`` removes the
previous release's warm slot (the deployment's ``stable_slot``) -- unless a deployment on the
target is active, or the slot serves again -- after the claim in ``actions.claim_window_end``.
"""

from __future__ import annotations

import logging

from django.utils import timezone

from integrations.base import IntegrationError
from releases import actions
from releases.models import ACTIVE_STATES, Deployment
from releases.reconcile.tick import observed_view
from releases.targets import integration_for

logger = logging.getLogger(__name__)


def due() -> list[int]:
    """Deployments whose kept slot is due to be scaled down."""
    return list(
        Deployment.objects.filter(cleanup_at__lte=timezone.now())
        .exclude(state__in=ACTIVE_STATES)
        .values_list("pk", flat=True)
    )


def due_windows() -> list[int]:
    """Succeeded deployments whose rollback window is over: their warm slot is to be retired."""
    return actions.due_windows()


def _remove_unused_slot(d, slot: str, record, what: str) -> object | None:
    """Remove ``slot`` of ``d``'s target unless another deployment uses it now; the target's
    status after, or None when it was left (``record`` says why, once, where trying again
    cannot help). ``what`` names the act in the messages ("retired", "scaled down")."""
    target_row = d.target
    in_use = Deployment.objects.filter(target=target_row, state__in=ACTIVE_STATES).exists()
    if in_use or target_row.stable_slot == slot:
        record(d, f"slot {slot} was left as it is: another deployment on the target uses it now")
        return None
    target = integration_for(target_row)
    try:
        target.remove_slot(slot)
        return target.status()
    except IntegrationError as exc:
        logger.warning("deployment %s: slot %s could not be %s: %s", d.pk, slot, what, exc.message)
        if exc.permanent:  # trying again cannot help: say so once and stop
            record(d, f"slot {slot} could not be {what}: {exc.message}")
        return None


def retire_warm_slot(deployment_id: int) -> bool:
    """End ``deployment_id``'s rollback window if it is over: remove the previous release's warm
    slot unless another deployment uses it now. True if removed."""
    d = actions.claim_window_end(deployment_id)
    if d is None:
        return False
    slot = d.stable_slot
    status = _remove_unused_slot(
        d, slot, lambda d, m: actions.record_window_end(d, f"rollback window over: {m}"), "retired"
    )
    if status is None:
        return False
    version = d.from_release.version if d.from_release_id else "the previous release"
    actions.record_window_end(
        d,
        f"rollback window over: {version}'s warm slot {slot} was retired; a rollback now "
        "redeploys it",
        observed=observed_view(status, None, stable_slot=d.target.stable_slot),
    )
    return True


def clean_up(deployment_id: int) -> bool:
    """Remove the kept slot of ``deployment_id`` if it is due and unused. True if removed."""
    d = actions.claim_cleanup(deployment_id)
    if d is None:
        return False
    slot = d.canary_slot
    status = _remove_unused_slot(d, slot, actions.record_cleanup, "scaled down")
    if status is None:
        return False
    actions.record_cleanup(
        d,
        f"the new release's slot {slot} (kept after the rollback) was scaled down",
        observed=observed_view(status, d),
    )
    return True
