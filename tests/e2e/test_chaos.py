"""Chaos: while rolling and canary deployments run on four targets, the Celery workers are
SIGKILLed at random moments (each restarted a moment later) and the Redis is restarted once,
mid-rollout, losing every queued message. Every deployment still ends in the state it should,
no step or batch is taken twice, the abort clicked in the middle of it is carried out, and no
request through the routers fails.

Bounded: at most ``MAX_KILLS`` kills within ``CHAOS_SECONDS``; the random moments come from a
seed printed on failure (``CHAOS_SEED=<n>`` replays one). Real processes: this test's own Redis
(never the machine's shared one), a fleet agent, beat with a 1 s sweep, two workers; traffic only
to 127.0.0.1.
"""

from __future__ import annotations

import os
import random
import time

import pytest

from integrations.local.traffic import Traffic, failures
from releases import actions
from releases.models import Deployment, DeploymentEvent, State
from switchyard import processes
from tests import factories
from tests.e2e.loop_stack import loop_stack
from tests.e2e.test_broker_restart import deploy, finished
from tests.e2e.test_canary import canary
from tests.e2e.test_rolling_deploy import ROLLING, TERMINAL, instance_versions

pytestmark = pytest.mark.e2e

MAX_KILLS = 8
CHAOS_SECONDS = 75.0
WORKERS = ("worker-a", "worker-b")
PLAN = {  # service -> (strategy of 2.0.0, the state it must end in)
    "rolls": ({**ROLLING, "min_ready": "700ms"}, State.SUCCEEDED),
    "climbs": (
        canary(
            {"set_weight": 25},
            {"pause": {"duration": "2s"}},
            {"set_weight": 50},
            {"pause": {"duration": "2s"}},
            {"set_weight": 100},
            progress_deadline="120s",
        ),
        State.SUCCEEDED,
    ),
    "aborted": (canary({"set_weight": 50}, {"pause": {}}, progress_deadline="120s"), State.ABORTED),
    "rolls-too": ({**ROLLING, "batch_size": 2, "min_ready": "1s"}, State.SUCCEEDED),
}


def steps_of(d) -> list[str]:
    return list(
        DeploymentEvent.objects.filter(deployment=d, kind="step")
        .order_by("id")
        .values_list("message", flat=True)
    )


def test_deployments_end_right_through_random_worker_kills_and_a_redis_restart(
    transactional_db, settings
):
    seed = int(os.environ.get("CHAOS_SEED") or random.randrange(1_000_000))
    rng = random.Random(seed)
    with loop_stack(settings, workers=WORKERS, log_name="chaos") as stack:
        factories.make_environment("dev", rollback_window=0)  # no warm slots: versions below
        targets = {slug: factories.make_target(factories.make_service(slug)) for slug in PLAN}
        for d in [deploy(t, "1.0.0", ROLLING) for t in targets.values()]:
            assert finished(stack, d, timeout=120).state == State.SUCCEEDED
        for t in targets.values():
            t.refresh_from_db()
        endpoints = [t.endpoint for t in targets.values()]
        traffic = [Traffic(url, rate=25, threads=2).__enter__() for url in endpoints]
        try:
            ds = {slug: deploy(targets[slug], "2.0.0", PLAN[slug][0]) for slug in PLAN}
            kills, aborted, redis_restarted = 0, False, False
            deadline = time.monotonic() + CHAOS_SECONDS
            while time.monotonic() < deadline and kills < MAX_KILLS:
                ended = Deployment.objects.filter(pk__in=[d.pk for d in ds.values()])
                if ended.filter(state__in=TERMINAL).count() == len(ds):
                    break
                time.sleep(rng.uniform(0.8, 3.0))
                victim = rng.choice(WORKERS)
                stack.supervisor.kill(victim)  # SIGKILL, pool processes included
                kills += 1
                time.sleep(rng.uniform(0.0, 1.0))
                if kills == 3 and not redis_restarted:
                    stack.redis.restart()  # every queued and held message is lost
                    redis_restarted = True
                command = processes.worker_command(concurrency=2, name=victim)
                stack.supervisor.start(victim, command)
                paused = Deployment.objects.get(pk=ds["aborted"].pk).state == State.PAUSED
                if not aborted and paused and kills >= 2:
                    actions.abort(factories.api_actor(), ds["aborted"].pk, reason="chaos")
                    aborted = True
            if not aborted:
                stack.wait_for(
                    lambda: Deployment.objects.get(pk=ds["aborted"].pk).state == State.PAUSED,
                    timeout=60,
                    what="the canary to pause",
                )
                actions.abort(factories.api_actor(), ds["aborted"].pk, reason="chaos")
            done = {slug: finished(stack, d, timeout=180) for slug, d in ds.items()}
            versions = {slug: instance_versions(stack, t.key) for slug, t in targets.items()}
        finally:
            for t in traffic:
                t.__exit__(None, None, None)
    print(f"\nchaos seed {seed}: {kills} kills, redis restarted {int(redis_restarted)}x")
    context = f"(CHAOS_SEED={seed}, kills={kills})"
    assert kills >= 3 and redis_restarted, context
    for slug, d in done.items():
        assert d.state == PLAN[slug][1], (slug, d.state, d.message, context)
        steps = steps_of(d)
        assert len(steps) == len(set(steps)), (slug, "a step was repeated", steps, context)
    rolls = [s.split(":")[0] for s in steps_of(done["rolls"])]
    assert rolls == [f"batch {n} of 4 started" for n in (1, 2, 3, 4)], context
    assert versions["rolls"] == versions["rolls-too"] == ["2.0.0"] * 4, versions
    assert set(versions["climbs"]) == {"2.0.0"}, versions
    # aborted: every request on the stable release (the canary's slot is kept a while, unrouted)
    assert done["aborted"].weights == {"stable": 100, "canary": 0}, done["aborted"].weights
    aborted_traffic = traffic[list(PLAN).index("aborted")].samples
    assert aborted_traffic[-1].version == "1.0.0"
    lost = [s for t in traffic for s in failures(t.samples)]
    assert lost == [], (lost[:5], context)
