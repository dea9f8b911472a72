"""The reconcile loop with blue-green and canary against a real fleet agent, tick by tick in this
process (no worker): routing applied whole, the preview and its smoke checks, the wait for a
person, the abort that routes before it reads, the kept slot and its cleanup, retry."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings as django_settings

from integrations.base import Routing
from integrations.local.process import start_agent
from integrations.local.target import LocalTarget
from releases import actions
from releases.errors import Conflict
from releases.models import Deployment, DeploymentEvent, State
from releases.reconcile import cleanup, tick
from tests import factories
from tests.ticks import tick_until

FAST_HEALTH = {"path": "/health", "interval": "100ms", "healthy_threshold": 2}
LOG = Path(django_settings.BASE_DIR) / "test-output" / "reconcile-fleet.log"


@pytest.fixture(scope="module")
def agent():
    LOG.parent.mkdir(parents=True, exist_ok=True)
    process = start_agent(log_path=LOG)
    yield process
    process.stop()


@pytest.fixture
def fleet(agent, settings, target):
    settings.FLEET_URL, settings.FLEET_TOKEN = agent.url, agent.token
    local = LocalTarget(target.key, {}, fleet_url=agent.url, token=agent.token)
    yield local
    local.delete()


class Recording:
    """The real target, with every call it gets written down (name and first argument)."""

    def __init__(self, inner):
        self.inner = inner
        self.calls: list[tuple[str, object]] = []

    def __getattr__(self, name):
        method = getattr(self.inner, name)

        def call(*args, **kwargs):
            self.calls.append((name, args[0] if args else None))
            return method(*args, **kwargs)

        return call


@pytest.fixture
def recorded(fleet, monkeypatch):
    recording = Recording(fleet)
    monkeypatch.setattr(tick, "integration_for", lambda row: recording)
    return recording


def deploy(target, version, strategy):
    factories.make_release(target.service, version, artifact={"sample": {"latency_ms": 1}})
    d, _ = actions.start_deployment(
        factories.api_actor(),
        service=target.service,
        environment=target.environment,
        version=version,
        strategy=strategy,
    )
    return d


def live(target, version="1.0.0", replicas=2):
    spec = {"kind": "recreate", "replicas": replicas, "health": FAST_HEALTH}
    d = tick_until(deploy(target, version, spec), lambda d: d.state == State.SUCCEEDED)
    target.refresh_from_db()
    return d


def canary_spec(*steps, **extra):
    return {
        "kind": "canary",
        "steps": list(steps),
        "stable_replicas": 2,
        "health": FAST_HEALTH,
        "route": {"header": "X-Canary"},
        **extra,
    }


def bg_spec(**extra):
    return {
        "kind": "blue_green",
        "replicas": 2,
        "preview_replicas": 1,
        "smoke": [{"path": "/health", "status": 200}],
        "auto_promote": 0,
        "scale_down_delay": "30s",
        "health": FAST_HEALTH,
        **extra,
    }


def test_a_canary_routes_weights_and_rules_to_its_slots(target, fleet):
    live(target)
    d = deploy(target, "2.0.0", canary_spec({"set_weight": 30}, {"pause": {}}))
    d = tick_until(d, lambda d: d.state == State.PAUSED, what="the pause")
    routing = fleet.status().routing
    stable, canary = d.stable_slot, d.canary_slot
    assert routing == Routing(
        weights={stable: 70, canary: 30},
        stable_slot=stable,
        canary_slot=canary,
        header="X-Canary",
    )
    assert d.message.startswith("step 2 of 3: waiting for promotion")
    assert d.weights == {"stable": 70, "canary": 30}
    event = DeploymentEvent.objects.filter(deployment=d, kind="state").last()
    assert event.message == "waiting for promotion: promote to continue"


def test_promote_continues_a_deployment_waiting_for_promotion(target, fleet):
    live(target)
    d = deploy(target, "2.0.0", canary_spec({"set_weight": 50}, {"pause": {}}))
    d = tick_until(d, lambda d: d.state == State.PAUSED, what="the pause")
    actions.promote(factories.api_actor(), d.pk)
    d = tick_until(d, lambda d: d.state == State.SUCCEEDED, what="the promotion")
    status = fleet.status()
    stable, canary = d.stable_slot, d.canary_slot
    assert status.routing.weights == {stable: 0, canary: 100} and status.routing.header is None
    assert status.slots[canary].ready == 2
    assert status.slots[stable].desired == 2 and d.window_until  # warm: the rollback window
    target.refresh_from_db()
    assert target.stable_slot == canary and target.stable_release.version == "2.0.0"


def test_an_abort_routes_to_the_old_release_first_and_keeps_the_canary_for_inspection(
    target, fleet, recorded
):
    live(target)
    d = deploy(target, "2.0.0", canary_spec({"set_weight": 50}, {"pause": {"duration": "1h"}}))
    d = tick_until(d, lambda d: d.weights.get("canary") == 50, what="50% on the canary")
    actions.abort(factories.api_actor(), d.pk, reason="looks wrong")
    recorded.calls.clear()
    tick.tick(d.pk)
    d.refresh_from_db()
    # the very first call of the tick: every new request to the old release, header rules off
    stable, canary = d.stable_slot, d.canary_slot
    assert recorded.calls[0] == (
        "set_routing",
        Routing(weights={stable: 100, canary: 0}, stable_slot=stable, canary_slot=canary),
    )
    assert [name for name, _ in recorded.calls] == ["set_routing", "status"]
    assert d.state == State.ABORTED  # restored in that same tick: the old side was whole
    assert d.cleanup_at is not None
    status = fleet.status()
    assert status.slots[canary].desired == 1  # kept for inspection
    assert status.routing.weights == {stable: 100, canary: 0}


def test_the_kept_slot_is_scaled_down_when_due_unless_another_deployment_uses_it(target, fleet):
    live(target)
    d = deploy(target, "2.0.0", canary_spec({"set_weight": 50}, {"pause": {}}))
    d = tick_until(d, lambda d: d.state == State.PAUSED, what="the pause")
    actions.abort(factories.api_actor(), d.pk)
    d = tick_until(d, lambda d: d.state == State.ABORTED, what="the abort")
    assert cleanup.due() == []  # not yet: it is kept for a while
    Deployment.objects.filter(pk=d.pk).update(cleanup_at=d.cleanup_at.replace(year=2000))
    assert cleanup.due() == [d.pk]
    assert cleanup.clean_up(d.pk) is True
    assert cleanup.clean_up(d.pk) is False  # done once
    d.refresh_from_db()
    assert d.cleanup_at is None
    slots = fleet.status().slots
    assert d.canary_slot not in slots or slots[d.canary_slot].desired == 0
    assert DeploymentEvent.objects.filter(deployment=d, kind="cleanup").count() == 1


def test_a_retry_runs_the_same_release_and_spec_and_the_cleanup_leaves_its_slot_alone(
    target, fleet
):
    live(target)
    d = deploy(target, "2.0.0", canary_spec({"set_weight": 50}, {"pause": {}}))
    d = tick_until(d, lambda d: d.state == State.PAUSED, what="the pause")
    actions.abort(factories.api_actor(), d.pk)
    d = tick_until(d, lambda d: d.state == State.ABORTED, what="the abort")
    again = actions.retry(factories.api_actor(), d.pk)
    assert (again.release_id, again.strategy, again.state) == (d.release_id, d.strategy, "pending")
    assert again.reason == f"retry of deployment #{d.pk}"
    Deployment.objects.filter(pk=d.pk).update(cleanup_at=d.cleanup_at.replace(year=2000))
    assert cleanup.clean_up(d.pk) is False  # the retry owns the slot now
    assert fleet.status().slots[d.canary_slot].desired == 1
    again = tick_until(again, lambda d: d.state == State.PAUSED, what="the retry's pause")
    assert again.weights == {"stable": 50, "canary": 50}
    with pytest.raises(Conflict, match="retry needs aborted, failed, rolled_back"):
        actions.retry(factories.api_actor(), again.pk)


def test_a_retry_while_another_deployment_is_active_is_a_conflict(target, fleet):
    live(target)
    d = deploy(target, "2.0.0", canary_spec({"set_weight": 50}, {"pause": {}}))
    actions.abort(factories.api_actor(), d.pk)
    d = tick_until(d, lambda d: d.state == State.ABORTED, what="the abort")
    deploy(target, "2.0.0", canary_spec({"set_weight": 50}))
    with pytest.raises(Conflict, match="is active"):
        actions.retry(factories.api_actor(), d.pk)


def test_a_canary_slot_left_running_another_release_is_replaced_not_counted(target, fleet):
    live(target)
    d = deploy(target, "2.0.0", canary_spec({"set_weight": 50}, {"pause": {}}))
    d = tick_until(d, lambda d: d.state == State.PAUSED, what="the pause")
    actions.abort(factories.api_actor(), d.pk)
    tick_until(d, lambda d: d.state == State.ABORTED, what="the abort")
    other = deploy(target, "3.0.0", canary_spec({"set_weight": 50}, {"pause": {}}))
    tick.tick(other.pk)
    other.refresh_from_db()
    assert other.weights == {"stable": 100, "canary": 0}  # 2.0.0's instance is not 3.0.0's
    assert fleet.status().slots[other.canary_slot].version == "3.0.0"


def test_blue_green_smoke_checks_run_against_the_preview_and_their_result_is_kept(target, fleet):
    live(target)
    d = deploy(target, "2.0.0", bg_spec(auto_promote=None))
    d = tick_until(d, lambda d: d.state == State.PAUSED, what="the promotion gate")
    smoke = d.checks["smoke"]
    assert smoke["passed"] is True
    [result] = smoke["results"]
    assert result["ok"] and result["status"] == 200 and result["path"] == "/health"
    status = fleet.status()
    assert status.routing.preview_slot == d.canary_slot and status.preview_endpoint
    assert smoke["urls"] == [status.preview_endpoint]
    assert status.routing.weights == {d.stable_slot: 100, d.canary_slot: 0}


def test_a_failing_smoke_check_fails_and_switches_back_by_itself(target, fleet):
    live(target)
    checks = [{"path": "/", "status": 200, "body_contains": "no such text"}]
    d = deploy(target, "2.0.0", bg_spec(smoke=checks))
    d = tick_until(d, lambda d: not d.is_active, what="the failure")
    assert d.state == State.FAILED
    assert d.failure_reason.startswith("smoke checks failed on the preview: GET / answered 200")
    status = fleet.status()
    assert status.routing.weights == {d.stable_slot: 100, d.canary_slot: 0}
    assert status.routing.preview_slot is None and status.preview_endpoint is None


def test_blue_green_switches_and_a_rollback_in_the_delay_switches_back(target, fleet, recorded):
    live(target)
    d = deploy(target, "2.0.0", bg_spec())
    d = tick_until(d, lambda d: d.weights.get("canary") == 100, what="the switch")
    assert fleet.status().slots[d.stable_slot].ready == 2  # the old side stays up
    actions.rollback(factories.api_actor(), d.pk)
    recorded.calls.clear()
    tick.tick(d.pk)
    d.refresh_from_db()
    assert recorded.calls[0][0] == "set_routing"
    assert recorded.calls[0][1].weights == {d.stable_slot: 100, d.canary_slot: 0}
    assert d.state == State.ROLLED_BACK


def test_rolling_back_a_succeeded_blue_green_is_a_blue_green_switch(target, fleet):
    live(target)
    d = deploy(target, "2.0.0", bg_spec(scale_down_delay=0))
    d = tick_until(d, lambda d: d.state == State.SUCCEEDED, what="success")
    back = actions.rollback(factories.api_actor(), d.pk)
    assert back.strategy["kind"] == "blue_green" and back.rollback_of_id == d.pk
    assert (back.strategy["auto_promote"], back.strategy["smoke"]) == (0.0, [])
    back = tick_until(back, lambda d: d.state == State.SUCCEEDED, what="the way back")
    status = fleet.status()
    assert status.routing.weights == {d.stable_slot: 100, d.canary_slot: 0}
    assert status.slots[d.canary_slot].desired == 0
