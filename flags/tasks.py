"""Celery tasks for flags (named explicitly, as beat's schedule names them)."""

from __future__ import annotations

from celery import shared_task

from flags import experiments, plans, sdk


@shared_task(name="flags.tasks.advance_plans", ignore_result=True)
def advance_plans() -> int:
    """Move rollout plans whose step's pause is over (beat runs it every sweep interval)."""
    return plans.tick()


@shared_task(name="flags.tasks.look_experiments", ignore_result=True)
def look_experiments() -> int:
    """Advance running experiments' sequential tests over the minutes closed since the last
    look, so a verdict's time does not depend on someone opening the page."""
    return experiments.look_all()


@shared_task(name="flags.tasks.prune_counts", ignore_result=True)
def prune_counts() -> int:
    """Delete per-minute evaluation counts past their retention (beat runs it hourly)."""
    return sdk.prune_counts()
