"""What a tick does when it fails with an unexpected error (a bug, not an ``IntegrationError``).

It is never a silent loop: ``releases.actions.record_tick_failure`` writes an event with the
error's class and message (the deployment page shows it) and counts the failures in a row; the
next try waits an exponential backoff with jitter (``backoff``); the ``TICK_MAX_FAILURES``-th
failure in a row fails the deployment, rolled back where it still can be. A tick that records
resets the count.

Settings (``django.conf.settings``, all optional): ``TICK_MAX_FAILURES`` (5),
``TICK_BACKOFF_BASE`` (1.0 s: the first retry's ceiling) and ``TICK_BACKOFF_MAX`` (30 s).
"""

from __future__ import annotations

import logging
import random

from django.conf import settings

from releases import actions
from releases.models import Deployment, State

logger = logging.getLogger(__name__)


def max_attempts() -> int:
    return max(1, int(getattr(settings, "TICK_MAX_FAILURES", 5)))


def backoff(attempt: int) -> float:
    """Seconds before retry ``attempt`` (1-based): a ceiling doubling from ``TICK_BACKOFF_BASE``
    up to ``TICK_BACKOFF_MAX``, and a uniformly random wait in its upper half ("equal jitter":
    workers that failed together do not retry together, and no retry comes at once)."""
    base = float(getattr(settings, "TICK_BACKOFF_BASE", 1.0))
    cap = float(getattr(settings, "TICK_BACKOFF_MAX", 30.0))
    ceiling = min(cap, base * 2 ** max(0, attempt - 1))
    return random.uniform(ceiling / 2, ceiling)


def handle(d: Deployment, exc: BaseException) -> tuple[float | None, bool]:
    """Record the failure; (seconds to the next tick or None when it ended, priority)."""
    logger.error("deployment %s: tick failed (%s: %s)", d.pk, type(exc).__name__, exc, exc_info=exc)
    wait = backoff(d.tick_failures + 1)
    state = actions.record_tick_failure(d, exc, retry_in=wait, max_attempts=max_attempts())
    if state is None or state == State.FAILED:
        return None, False
    if state == State.ROLLING_BACK and d.state != State.ROLLING_BACK:
        return 0.0, True  # it failed just now: the rollback starts at once
    return wait, state == State.ROLLING_BACK
