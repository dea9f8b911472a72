"""Crashes: a killed worker and a lost broker message delay a rollout, they never strand it,
repeat a step or lose what a person clicked (the intent is in the database; the sweep re-enqueues).
"""

from __future__ import annotations

import time

import pytest
import redis
from django.conf import settings

from integrations.local.traffic import Traffic, failures
from releases.models import DeploymentEvent
from switchyard import processes
from tests.e2e.test_rolling_deploy import ROLLING, Api, instance_versions, wait_done

pytestmark = pytest.mark.e2e

SLOW = {**ROLLING, "min_ready": "1500ms"}


def set_up(stack, tmp_path):
    from releases.governance.tokens import create_token
    from tests import factories

    _, raw = create_token(factories.make_user("ci-admin"), "ci")
    api = Api(raw)
    api.call("post", "/services", {"slug": "shop", "name": "Shop"})
    # the rollback window off: this is about the rollout (tests/e2e/test_window.py: the window)
    api.call(
        "post", "/environments", {"slug": "dev", "name": "Dev", "order": 1, "rollback_window": 0}
    )
    api.call("put", "/services/shop/targets/dev", {"provider": "local", "config": {}})
    for version in ("1.0.0", "2.0.0"):
        api.call("post", "/services/shop/releases", {"version": version})
    first = api.call(
        "post",
        "/deployments",
        {"service": "shop", "environment": "dev", "version": "1.0.0", "strategy": ROLLING},
    )
    assert wait_done(stack, api, first["id"])["state"] == "succeeded"
    return api


def start_second(stack, api):
    second = api.call(
        "post",
        "/deployments",
        {"service": "shop", "environment": "dev", "version": "2.0.0", "strategy": SLOW},
    )
    stack.wait_for(
        lambda: DeploymentEvent.objects.filter(
            deployment_id=second["id"], message__startswith="batch 2 of 4 started"
        ).exists(),
        timeout=30,
        what="batch 2 to start",
    )
    return second


def restart_worker_and_sweep(stack, tmp_path):
    stack.supervisor.env["SWEEP_INTERVAL_SECONDS"] = "1"
    stack.supervisor.start("worker", processes.worker_command(concurrency=2))
    stack.supervisor.start("beat", processes.beat_command(tmp_path / "beat-schedule"))


def step_messages(deployment_id):
    return list(
        DeploymentEvent.objects.filter(deployment_id=deployment_id, kind="step")
        .order_by("id")
        .values_list("message", flat=True)
    )


def test_a_killed_worker_resumes_the_rollout_without_repeating_a_step(stack, tmp_path):
    api = set_up(stack, tmp_path)
    endpoint = api.call("get", "/services/shop/targets/dev")["endpoint"]
    with Traffic(endpoint, rate=50, threads=2) as traffic:
        second = start_second(stack, api)
        stack.supervisor.kill("worker")  # SIGKILL, mid-rollout, pool processes included
        time.sleep(2)
        restart_worker_and_sweep(stack, tmp_path)
        done = wait_done(stack, api, second["id"])
    assert done["state"] == "succeeded", done
    assert instance_versions(stack, "shop.dev") == ["2.0.0"] * 4
    steps = step_messages(second["id"])
    assert len(steps) == len(set(steps)), f"a step was repeated: {steps}"
    assert [s.split(":")[0] for s in steps] == [f"batch {n} of 4 started" for n in (1, 2, 3, 4)]
    assert failures(traffic.samples) == []


def test_an_abort_clicked_while_the_worker_is_dead_and_its_message_lost_is_carried_out(
    stack, tmp_path
):
    api = set_up(stack, tmp_path)
    endpoint = api.call("get", "/services/shop/targets/dev")["endpoint"]
    with Traffic(endpoint, rate=50, threads=2) as traffic:
        second = start_second(stack, api)
        stack.supervisor.kill("worker")
        aborted = api.call("post", f"/deployments/{second['id']}/abort", {"reason": "crash test"})
        assert aborted["state"] == "rolling_back"
        # the broker loses every queued message (a Redis restart without persistence)
        redis.Redis.from_url(settings.REDIS_URL).flushdb()
        restart_worker_and_sweep(stack, tmp_path)
        done = wait_done(stack, api, second["id"])
        time.sleep(0.5)
    assert done["state"] == "aborted", done
    assert instance_versions(stack, "shop.dev") == ["1.0.0"] * 4
    assert failures(traffic.samples) == []
    assert traffic.samples[-1].version == "1.0.0"
