"""End to end on AWS (a real moto_server process) through a real Celery worker process: the
deployment is started and driven through ``releases.actions`` only, as the API does; the worker
runs every tick. A canary on the ALB listener's weights stepping 10 -> 50 -> 100 with promotions,
an abort that writes 100% stable, and a Lambda linear shift."""

from __future__ import annotations

import os

import pytest
from django.conf import settings as django_settings

from releases import actions
from releases.models import Deployment, State
from switchyard import processes
from tests import factories
from tests.integrations.aws.moto import make_ecs_world, make_lambda_world
from tests.integrations.aws.test_aws_ecs_reconcile import weights
from tests.integrations.aws.test_aws_lambda import alias
from tests.stack import child_database_url, wait_for

pytestmark = pytest.mark.e2e
LOG_DIR = django_settings.BASE_DIR / "test-output" / "aws-e2e"


@pytest.fixture
def worker(transactional_db, moto, settings):
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.update(
        DATABASE_URL=child_database_url(),
        REDIS_URL=settings.REDIS_URL,
        SECRET_KEY=settings.SECRET_KEY,
        SWITCHYARD_AWS_ENDPOINT_URL=moto.url,
        AWS_REGION="us-east-1",
    )
    supervisor = processes.Supervisor(env=env, log_dir=LOG_DIR)
    supervisor.start("worker", processes.worker_command(concurrency=2))
    try:
        yield supervisor
    finally:
        supervisor.stop()


def until(worker, predicate, what, timeout=60.0):
    return wait_for(predicate, worker, LOG_DIR, timeout=timeout, interval=0.1, what=what)


def state_of(d):
    return Deployment.objects.get(pk=d.pk).state


def start(target, version, artifact, strategy):
    factories.make_release(target.service, version, artifact=artifact)
    d, _ = actions.start_deployment(
        factories.api_actor(),
        service=target.service,
        environment=target.environment,
        version=version,
        strategy=strategy,
    )
    return d


def test_an_ecs_canary_climbs_10_50_100_then_an_abort_writes_100_stable(moto, worker):
    world = make_ecs_world(moto)
    target = factories.make_target(provider="aws-ecs", config=world.config())
    first = start(target, "1.0.0", {"image": "example/api:1"}, {"kind": "recreate", "replicas": 2})
    until(worker, lambda: state_of(first) == State.SUCCEEDED, "the first release")
    ladder = [{"set_weight": 10}, {"pause": {}}, {"set_weight": 50}, {"pause": {}}]
    spec = {"kind": "canary", "steps": [*ladder, {"set_weight": 100}], "stable_replicas": 2}
    d = start(target, "2.0.0", {"image": "example/api:2"}, spec)
    canary = d.canary_slot
    seen = []
    for _ in range(2):
        until(worker, lambda: state_of(d) == State.PAUSED, "a pause")
        seen.append(weights(moto, world.listener_arn, world)[canary])
        actions.promote(factories.api_actor(), d.pk)
        until(worker, lambda: state_of(d) != State.PAUSED, "the promotion")
    until(worker, lambda: state_of(d) == State.SUCCEEDED, "success")
    seen.append(weights(moto, world.listener_arn, world)[canary])
    assert seen == [10, 50, 100]

    spec = {"kind": "canary", "steps": [{"set_weight": 50}, {"pause": {}}], "stable_replicas": 2}
    third = start(target, "3.0.0", {"image": "example/api:3"}, spec)
    until(worker, lambda: state_of(third) == State.PAUSED, "50% on 3.0.0")
    actions.abort(factories.api_actor(), third.pk, reason="e2e")
    until(worker, lambda: state_of(third) == State.ABORTED, "aborted")
    stable = third.stable_slot
    assert weights(moto, world.listener_arn, world) == {stable: 100, third.canary_slot: 0}


def test_a_lambda_linear_shift_runs_to_the_end_on_the_worker(moto, worker):
    world = make_lambda_world(moto)
    target = factories.make_target(provider="aws-lambda", config=world.config())
    first = start(target, "1.0.0", world.upload(moto, "1.0.0"), {"kind": "recreate", "replicas": 1})
    until(worker, lambda: state_of(first) == State.SUCCEEDED, "the first release")
    old, _ = alias(moto, world)
    steps = []
    for weight in (10, 20, 30):
        steps += [{"set_weight": weight}, {"pause": {"duration": "200ms"}}]
    spec = {"kind": "canary", "steps": [*steps, {"set_weight": 100}], "stable_replicas": 1}
    d = start(target, "2.0.0", world.upload(moto, "2.0.0"), spec)
    seen = set()

    def done():
        primary, extra = alias(moto, world)
        if primary == old and extra:
            seen.add(round(next(iter(extra.values())) * 100))
        return state_of(d) == State.SUCCEEDED

    until(worker, done, "the linear shift")
    primary, extra = alias(moto, world)
    assert primary != old and extra == {}
    assert seen <= {10, 20, 30} and seen  # the shift went through its steps on the alias
