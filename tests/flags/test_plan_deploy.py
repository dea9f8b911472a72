"""Deploy, then release: a rollout plan that starts with a deployment's canary steps and goes on
with the flag's, as one timeline with one set of controls. The deployment runs on a real fleet
agent, driven by the reconcile loop tick by tick in this process; the plan's Promote and Abort
reach the deployment through ``releases.actions``."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.test import Client

from flags import plans, state
from flags.models import PlanState
from integrations.local.process import start_agent
from integrations.local.target import LocalTarget
from releases import actions
from releases.errors import Conflict, InvalidSpec
from releases.models import AuditEvent, State
from tests import factories
from tests.flags.conftest import make_flag
from tests.flags.test_api import caller
from tests.ticks import tick_until

pytestmark = pytest.mark.django_db

FAST_HEALTH = {"path": "/health", "interval": "100ms", "healthy_threshold": 2}
LOG = Path(django_settings.BASE_DIR) / "test-output" / "flag-plan-fleet.log"
FLAG_STEPS = [{"percent": 10}, {"percent": 100}]
CANARY = {
    "kind": "canary",
    "steps": [{"set_weight": 20}, {"pause": {}}, {"set_weight": 50}, {"pause": {}}],
    "stable_replicas": 2,
    "health": FAST_HEALTH,
}


@pytest.fixture(scope="module")
def agent():
    LOG.parent.mkdir(parents=True, exist_ok=True)
    process = start_agent(log_path=LOG)
    yield process
    process.stop()


@pytest.fixture
def target(service, prod, agent, settings):
    settings.FLEET_URL, settings.FLEET_TOKEN = agent.url, agent.token
    row = factories.make_target(service, prod)
    yield row
    LocalTarget(row.key, {}, fleet_url=agent.url, token=agent.token).delete()


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


@pytest.fixture
def canary(target):
    spec = {"kind": "recreate", "replicas": 2, "health": FAST_HEALTH}
    tick_until(deploy(target, "1.0.0", spec), lambda d: d.state == State.SUCCEEDED)
    return deploy(target, "2.0.0", CANARY)


def served(env) -> str:
    feature = state.build(env.pk, 0).document["features"][0]
    return feature["strategies"][0]["parameters"]["rollout"] if feature["enabled"] else "off"


def page(prod) -> str:
    client = Client()
    client.force_login(factories.make_persona("deployer", prod))
    return client.get("/flags/checkout/").content.decode()


def wheres(html: str, phase: str) -> list[str]:
    return re.findall(rf'data-where="(\w+)" data-phase="{phase}"', html)


def test_the_flag_steps_begin_when_the_deployment_succeeds(actor, prod, canary):
    flag = make_flag(actor, prod)
    plan = plans.start(actor, flag, prod, FLAG_STEPS, deployment=canary)
    assert plan.steps[0]["deploy"] and served(prod) == "0"  # on, for nobody yet
    assert plans.tick() == 0  # the deployment is under way
    d = tick_until(canary, lambda d: d.state == State.PAUSED, what="the first pause")
    html = page(prod)
    assert wheres(html, "deploy") == ["done", "current", "next", "next", "next"]
    assert wheres(html, "release") == ["next", "next"]
    assert f'href="/deployments/{d.pk}/"' in html

    plans.promote(actor, plan)  # the plan's Promote moves the deployment on
    assert AuditEvent.objects.filter(action="deployment.promote", object_id=str(d.pk)).exists()
    d = tick_until(d, lambda d: d.state == State.PAUSED and d.step_index == 3, what="50 %")
    assert d.weights["canary"] == 50
    assert plans.tick() == 0
    plan.refresh_from_db()
    assert (plan.step_index, plan.state) == (0, PlanState.ACTIVE)

    plans.promote(actor, plan)
    tick_until(d, lambda d: d.state == State.SUCCEEDED, what="the deployment's success")
    assert plans.tick() == 1
    plan.refresh_from_db()
    assert (plan.step_index, served(prod)) == (1, "10")
    html = page(prod)
    assert wheres(html, "deploy") == ["done"] * 5
    assert wheres(html, "release") == ["current", "next"]
    plan = plans.promote(actor, plan)  # now the flag's own steps
    assert (plan.state, served(prod)) == (PlanState.COMPLETED, "100")


def test_aborting_the_plan_while_it_deploys_aborts_the_deployment(actor, prod, canary):
    flag = make_flag(actor, prod)
    plan = plans.start(actor, flag, prod, FLAG_STEPS, deployment=canary)
    d = tick_until(canary, lambda d: d.state == State.PAUSED, what="the first pause")
    plan = plans.abort(actor, plan, "not today")
    assert plan.state == PlanState.ABORTED and served(prod) == "0"
    d = tick_until(d, lambda d: d.state == State.ABORTED, what="the abort")
    assert AuditEvent.objects.get(action="deployment.abort").data == {"reason": "not today"}


def test_a_deployment_that_does_not_succeed_aborts_the_plan(actor, prod, canary):
    flag = make_flag(actor, prod)
    plan = plans.start(actor, flag, prod, FLAG_STEPS, deployment=canary)
    d = tick_until(canary, lambda d: d.state == State.PAUSED, what="the first pause")
    actions.abort(factories.api_actor(), d.pk, reason="bad canary")
    d = tick_until(d, lambda d: d.state == State.ABORTED, what="the abort")
    html = page(prod)
    assert wheres(html, "deploy")[1] == "failed"
    assert plans.tick() == 1
    plan.refresh_from_db()
    assert plan.state == PlanState.ABORTED and served(prod) == "0"
    assert f"deployment {d.pk} did not succeed" in plan.message
    with pytest.raises(Conflict):  # nothing to release after
        plans.start(actor, flag, prod, FLAG_STEPS, deployment=d)


def test_the_deployment_must_be_in_the_plans_environment(actor, prod, dev, canary):
    flag = make_flag(actor, dev)
    with pytest.raises(InvalidSpec):
        plans.start(actor, flag, dev, FLAG_STEPS, deployment=canary)


def test_the_api_starts_a_plan_that_deploys_first(admin, prod, target):
    call = caller(admin)
    d = factories.make_deployment(target, "3.0.0", CANARY)
    assert call("POST", "/flags", {"key": "checkout"}).status_code == 201
    answer = call(
        "POST",
        "/flags/checkout/environments/prod/plan",
        {"steps": FLAG_STEPS, "deployment": d.pk},
    )
    assert answer.status_code == 201, answer.content
    body = answer.json()
    assert (body["deployment"], body["step"], body["percent"]) == (d.pk, 0, 0)
    assert body["steps"][0]["deploy"] is True and body["analysis"] is None
    missing = call(
        "POST", "/flags/checkout/environments/prod/plan", {"steps": FLAG_STEPS, "deployment": 999}
    )
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"
