"""Looking again at a target after its deployment ended, until its instances have settled.

A rollout ends while the old release's instances are still draining (the fleet stops them a few
seconds later) and no tick looks again, so the page and ``GET /services/{slug}/targets/{env}``
kept showing "draining" with ``observed_at`` frozen. The periodic sweep (``tasks.sweep``) calls
``settle()``: every target with no active deployment whose stored picture still has an instance
in a passing state is observed once more (outside any transaction; the integration's own
timeouts apply), until nothing is passing.
"""

from __future__ import annotations

import logging

from django.utils import timezone

from integrations.base import IntegrationError
from releases import actions
from releases.models import ACTIVE_STATES, Deployment, State, Target
from releases.reconcile.tick import observed_view
from releases.targets import integration_for

logger = logging.getLogger(__name__)

# instance states that change by themselves, without a tick
PASSING = frozenset({"draining", "starting", "stopping"})
MAX_PER_SWEEP = 20


def passing(observed: dict | None) -> bool:
    """Whether a stored slot picture has an instance that is still changing."""
    return any(
        inst.get("state") in PASSING
        for slot in (observed or {}).values()
        for inst in (slot or {}).get("instances") or ()
    )


def unsettled() -> list[int]:
    """Targets with no active deployment whose picture shows instances still changing."""
    busy = Deployment.objects.filter(state__in=ACTIVE_STATES).values("target_id")
    rows = Target.objects.exclude(pk__in=busy).exclude(observed={}).values_list("pk", "observed")
    return [pk for pk, observed in rows if passing(observed)][:MAX_PER_SWEEP]


def refresh(target_id: int) -> bool:
    """Observe ``target_id`` again and store it (roles: its stable slot). True if stored."""
    target = Target.objects.select_related("service", "environment").filter(pk=target_id).first()
    if target is None:
        return False
    try:
        status = integration_for(target).status()
    except IntegrationError as exc:
        logger.info("target %s: could not look again: %s", target.key, exc.message)
        return False
    warm = (  # the previous release's slot, while a rollback window keeps it warm
        Deployment.objects.filter(
            target_id=target_id, state=State.SUCCEEDED, window_until__gt=timezone.now()
        )
        .values_list("stable_slot", flat=True)
        .first()
    )
    view = observed_view(status, None, stable_slot=target.stable_slot or None, warm_slot=warm)
    return actions.record_observed(target_id, view, endpoint=status.endpoint)


def settle() -> int:
    return sum(refresh(pk) for pk in unsettled())
