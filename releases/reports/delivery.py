"""Delivery figures for one environment (and optionally one service) over a period, and the
"why was it rolled back" of each deployment on the history page.

Definitions (the history page's help text says the same; change both together):

- A *change* is a deployment of the environment that is not a rollback deployment (one Switchyard
  started to take a succeeded deployment back: ``rollback_of`` is set), that began rolling out
  (``started_at`` is set: rejected ones, and ones aborted before they started, never reached
  the environment), and that ended — succeeded, failed, rolled back or aborted — within the
  period (``finished_at``).
- A change *failed* if it ended failed, rolled back or aborted, or if it succeeded and a rollback
  deployment was later started for it.
- **Deployment frequency**: changes that succeeded in the period, per day (and per week) of the
  period.
- **Change failure rate**: failed changes / changes.
- **Median time to restore**: over the failed changes, the median time from when the change began
  serving traffic (its rollout started) to when every request was served by a working release
  again: for a change that ended failed, rolled back or aborted, its own end (its rollback
  finished); for a succeeded change rolled back later, the end of the first later deployment of
  the same target that succeeded — the rollback deployment, or a fix forward if that came first.
  A failed change not restored yet counts in ``unrestored`` and not in the median.
- **Median lead time**: over the releases that reached the environment in the period — the first
  change of that release to the environment that succeeded finished in the period, and none did
  before — the median time from the release's creation (CI registering the build) to that
  change's end. On the production environment (the last of the promotion path) this is the lead
  time to production.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from releases.models import Deployment, DeploymentEvent, Environment, Service, State

CHANGE_OUTCOMES = (State.SUCCEEDED, State.FAILED, State.ROLLED_BACK, State.ABORTED)
FAILED_OUTCOMES = (State.FAILED, State.ROLLED_BACK, State.ABORTED)


def production() -> Environment | None:
    """The last environment of the promotion path."""
    return Environment.objects.order_by("-order", "-slug").first()


@dataclass
class Figures:
    environment: Environment
    service: Service | None
    start: datetime
    end: datetime
    changes: int = 0
    succeeded: int = 0
    failed: int = 0
    restore_seconds: list[float] = field(default_factory=list)
    unrestored: int = 0
    lead_seconds: list[float] = field(default_factory=list)

    @property
    def days(self) -> float:
        return max((self.end - self.start).total_seconds() / 86400, 1 / 24)

    @property
    def per_day(self) -> float:
        return self.succeeded / self.days

    @property
    def per_week(self) -> float:
        return self.per_day * 7

    @property
    def failure_rate(self) -> float | None:
        return self.failed / self.changes if self.changes else None

    @property
    def median_restore(self) -> timedelta | None:
        return _median(self.restore_seconds)

    @property
    def median_lead(self) -> timedelta | None:
        return _median(self.lead_seconds)


def _median(values: list[float]) -> timedelta | None:
    return timedelta(seconds=statistics.median(values)) if values else None


def delivery_figures(
    environment: Environment,
    start: datetime,
    end: datetime,
    service: Service | None = None,
    *,
    among=None,
) -> Figures:
    """The four figures for ``environment`` (and ``service``) over [start, end), counting only
    the deployments of ``among`` (a queryset: what the viewer may see; default all): at most
    five queries."""
    figures = Figures(environment=environment, service=service, start=start, end=end)
    base = Deployment.objects.all() if among is None else among
    scope = base.filter(target__environment=environment)
    if service is not None:
        scope = scope.filter(target__service=service)
    changes = list(
        scope.filter(
            rollback_of__isnull=True,
            started_at__isnull=False,
            finished_at__gte=start,
            finished_at__lt=end,
            state__in=CHANGE_OUTCOMES,
        )
        .order_by("finished_at", "pk")
        .values(
            "pk",
            "state",
            "target_id",
            "started_at",
            "finished_at",
            "release_id",
            "release__created_at",
        )
    )
    succeeded = [c for c in changes if c["state"] == State.SUCCEEDED]
    rolled_back_later = set(
        Deployment.objects.filter(rollback_of__in=[c["pk"] for c in succeeded]).values_list(
            "rollback_of_id", flat=True
        )
    )
    figures.changes, figures.succeeded = len(changes), len(succeeded)

    later_failures = [c for c in succeeded if c["pk"] in rolled_back_later]
    for c in changes:
        if c["state"] in FAILED_OUTCOMES:
            figures.failed += 1
            figures.restore_seconds.append((c["finished_at"] - c["started_at"]).total_seconds())
    figures.failed += len(later_failures)
    if later_failures:
        successes = list(
            scope.filter(
                target_id__in={c["target_id"] for c in later_failures},
                state=State.SUCCEEDED,
                finished_at__gt=min(c["finished_at"] for c in later_failures),
            )
            .order_by("finished_at")
            .values_list("target_id", "finished_at")
        )
        for c in later_failures:
            restored = next(
                (
                    at
                    for target, at in successes
                    if target == c["target_id"] and at > c["finished_at"]
                ),
                None,
            )
            if restored is None:
                figures.unrestored += 1
            else:
                figures.restore_seconds.append((restored - c["started_at"]).total_seconds())

    firsts: dict[int, dict] = {}
    for c in succeeded:
        firsts.setdefault(c["release_id"], c)
    earlier = set(
        scope.filter(
            release_id__in=list(firsts),
            rollback_of__isnull=True,
            state=State.SUCCEEDED,
            finished_at__lt=start,
        ).values_list("release_id", flat=True)
    )
    figures.lead_seconds = [
        (c["finished_at"] - c["release__created_at"]).total_seconds()
        for release_id, c in firsts.items()
        if release_id not in earlier
    ]
    return figures


# --- why each deployment ended as it did ----------------------------------------------------------


def outcome_notes(deployments: list[Deployment]) -> dict[int, str]:
    """Per deployment id, why it was rolled back (or failed), in words: two queries."""
    ids = [d.pk for d in deployments]
    asked = {}
    for e in DeploymentEvent.objects.filter(
        deployment__in=ids, kind="state", data__state=State.ROLLING_BACK
    ).order_by("id"):
        asked.setdefault(e.deployment_id, e)
    rollbacks = {}
    for r in Deployment.objects.filter(rollback_of__in=ids).select_related("created_by"):
        rollbacks.setdefault(r.rollback_of_id, r)
    notes = {}
    for d in deployments:
        parts = []
        if d.rollback_of_id:
            parts.append(f"rollback of #{d.rollback_of_id}" + (f": {d.reason}" if d.reason else ""))
        if d.state == State.FAILED and d.failure_reason:
            parts.append(d.failure_reason)
        elif d.state in (State.ROLLED_BACK, State.ABORTED) and d.pk in asked:
            e = asked[d.pk]
            verb = "aborted" if d.state == State.ABORTED else "rolled back"
            why = (e.data or {}).get("reason") or "no reason given"
            parts.append(f"{verb} by {e.actor or 'switchyard'}: {why}")
        if d.pk in rollbacks:
            r = rollbacks[d.pk]
            who = r.created_by.get_username() if r.created_by_id else "switchyard"
            parts.append(f"rolled back by #{r.pk} ({who})" + (f": {r.reason}" if r.reason else ""))
        notes[d.pk] = "; ".join(parts)
    return notes


def duration(d: Deployment, now: datetime) -> timedelta | None:
    begun = d.started_at or d.created_at
    if begun is None:
        return None
    return (d.finished_at or now) - begun
