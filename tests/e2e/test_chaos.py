"""Chaos: while rolling and canary deployments run on five targets, the Celery workers are
SIGKILLed at random moments (each restarted a moment later) and the Redis is restarted once,
mid-rollout, losing every queued message. Every deployment still ends in the state it should,
no step or batch is taken twice, the abort and the promote given in the middle of it are carried
out, and no request through the routers fails (``tests/e2e/chaos.py`` runs it; ``bench/chaos.py``
runs the same over twenty deployments).

Bounded: at most ``MAX_KILLS`` kills within ``CHAOS_SECONDS``; the random moments come from a
seed printed with the figures (``CHAOS_SEED=<n>`` replays one). Real processes: this test's own
Redis (never the machine's shared one), a fleet agent, beat with a 1 s sweep, two workers;
traffic only to 127.0.0.1.
"""

from __future__ import annotations

import os
import random

import pytest

from tests.e2e import chaos
from tests.e2e.loop_stack import loop_stack

pytestmark = pytest.mark.e2e

MAX_KILLS = 8
CHAOS_SECONDS = 75.0
WORKERS = ("worker-a", "worker-b")
PLAN = {kind: kind for kind in chaos.KINDS}  # one target (service) of each kind


def test_deployments_end_right_through_random_worker_kills_and_a_redis_restart(
    transactional_db, settings
):
    seed = int(os.environ.get("CHAOS_SEED") or random.randrange(1_000_000))
    with loop_stack(settings, workers=WORKERS, log_name="chaos") as stack:
        figures = chaos.run(
            stack,
            PLAN,
            seed=seed,
            workers=WORKERS,
            max_kills=MAX_KILLS,
            chaos_seconds=CHAOS_SECONDS,
        )
    print(f"\nchaos seed {seed}:\n{figures.report()}")
    context = f"(CHAOS_SEED={seed})\n{figures.report()}"
    assert figures.kills >= 3, context
    assert figures.redis_restarts == 1 and figures.active_at_redis_restart >= 1, context
    assert figures.stranded == [], context
    assert figures.wrong_state == [], context
    assert figures.repeated_steps == [], context
    assert figures.commands == 2 and figures.lost_commands == [], context
    assert figures.wrong_versions == [], context
    assert figures.requests > 0 and figures.failed_requests == [], (
        figures.failed_requests[:5],
        context,
    )
