"""Celery tasks for flags (named explicitly, as beat's schedule names them)."""

from __future__ import annotations

from celery import shared_task

from flags import plans


@shared_task(name="flags.tasks.advance_plans", ignore_result=True)
def advance_plans() -> int:
    """Move rollout plans whose step's pause is over (beat runs it every sweep interval)."""
    return plans.tick()
