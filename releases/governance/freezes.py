"""When nothing may ship: the freeze windows in force for a target now (each with its reason and
end), and whether one holds a deployment's next automatic promotion. Rollbacks and aborts are
never held. The window maths is ``releases.models.schedule`` (pure)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from django.db.models import Q
from django.utils import timezone

from releases.models import (
    Deployment,
    FreezeOverride,
    FreezeWindow,
    State,
    Target,
    schedule,
)

logger = logging.getLogger(__name__)


# --- freezes ----------------------------------------------------------------------------------


# a window that cannot be evaluated is in force until someone fixes or disables it
UNTIL_FIXED = datetime.max.replace(tzinfo=UTC)


@dataclass(frozen=True)
class ActiveFreeze:
    window: FreezeWindow
    until: datetime
    error: str = ""  # why the window cannot be evaluated (it then blocks: fail closed)

    @property
    def message(self) -> str:
        w = self.window
        where = w.environment.slug + (f" ({w.service.slug})" if w.service_id else "")
        if self.error:
            return (
                f"{where} is frozen by {w.name!r}, which cannot be evaluated ({self.error}): "
                "fix or disable the window"
            )
        until = schedule.local_time(self.until, w.timezone)
        return f"{where} is frozen by {w.name!r} until {until}: {w.reason}"

    def details(self) -> dict:
        w = self.window
        return {
            "window": {
                "id": w.pk,
                "name": w.name,
                "reason": w.reason,
                "when": "" if self.error else w.when,
                "until": None if self.error else self.until.isoformat(),
                "error": self.error or None,
                "environment": w.environment.slug,
                "service": w.service.slug if w.service_id else None,
            }
        }


def active_freezes(target: Target, now=None) -> list[ActiveFreeze]:
    """The enabled windows of the target's environment (and service) in force now, the one that
    lifts last first."""
    now = now or timezone.now()
    windows = (
        FreezeWindow.objects.select_related("environment", "service")
        .filter(environment_id=target.environment_id, enabled=True)
        .filter(Q(service__isnull=True) | Q(service_id=target.service_id))
    )
    found = []
    for w in windows:
        try:
            until = schedule.active_until(w, now)
        except schedule.FreezeError as exc:  # saved without validation (e.g. a raw insert)
            # fail closed: a window nobody can read blocks until it is fixed or disabled
            logger.warning("freeze window %s cannot be evaluated (blocking): %s", w.pk, exc)
            found.append(ActiveFreeze(w, UNTIL_FIXED, error=str(exc)))
            continue
        if until is not None:
            found.append(ActiveFreeze(w, until))
    return sorted(found, key=lambda f: f.until, reverse=True)


def active_freeze(target: Target, now=None) -> ActiveFreeze | None:
    found = active_freezes(target, now)
    return found[0] if found else None


def promotion_freeze(d: Deployment, now=None) -> ActiveFreeze | None:
    """For the reconcile loop, before an *automatic* promotion (a timed pause ending, an
    analysis passing, blue-green auto-promote, the next rolling batch): the freeze that holds
    it, or None. Rollbacks, aborts and deployments an admin let through a freeze are never held.
    Hold the deployment where it is and show ``freeze.message``; check again on later ticks."""
    if d.rollback_of_id is not None or d.state == State.ROLLING_BACK:
        return None
    if FreezeOverride.objects.filter(deployment=d).exists():
        return None
    return active_freeze(d.target, now)
