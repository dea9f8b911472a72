"""Rollout plans gated by an experiment's verdict: a better variant moves the plan on, a worse
one steps it back by itself (paused, for a person), a sample-ratio mismatch holds it; the
cleanup step reminds and completes when confirmed; the flag page draws the plan as one timeline
with one-click promote / step back / abort (through ``flags.plans``, with roles)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client

from flags import experiments, plans, state
from flags.models import PlanState, RolloutPlan
from releases.models import AuditEvent
from tests import factories
from tests.flags.conftest import make_flag
from tests.flags.test_experiments import VARIANTS, feed

pytestmark = pytest.mark.django_db

GATED = [
    {"percent": 10},
    {"percent": 50, "gate": "experiment"},
    {"percent": 100, "pause": "1h"},
    {"cleanup": True, "pause": "14d"},
]


def served_rollout(env) -> str:
    feature = state.build(env.pk, 0).document["features"][0]
    return feature["strategies"][0]["parameters"]["rollout"] if feature["enabled"] else "off"


@pytest.fixture
def gated(actor, prod):
    flag = make_flag(actor, prod, flag_type="experiment", variants=VARIANTS)
    plan = plans.promote(actor, plans.start(actor, flag, prod, GATED))
    assert served_rollout(prod) == "50"
    return flag, plan


def test_a_better_verdict_moves_the_plan_on_and_the_cleanup_step_reminds(gated, actor, prod):
    flag, plan = gated
    assert plans.tick() == 0  # gated, no experiment: waits
    experiment = experiments.start(actor, flag, prod, "control")
    assert plans.tick() == 0  # no verdict yet
    end = feed(experiment, 30, (0.10, 0.16))
    assert plans.tick(end) == 1
    plan.refresh_from_db()
    assert (plan.step_index, plan.state, served_rollout(prod)) == (2, "active", "100")
    assert plans.tick(plan.step_started_at + timedelta(hours=2)) == 1
    plan.refresh_from_db()
    assert plan.steps[plan.step_index]["cleanup"] and plan.state == PlanState.ACTIVE
    assert "remove the flag from the code" in plan.message
    assert plans.tick(plan.step_started_at + timedelta(days=1)) == 0
    assert plans.tick(plan.step_started_at + timedelta(days=15)) == 1
    plan.refresh_from_db()
    assert plan.message.startswith("Cleanup overdue")
    assert plans.tick(plan.step_started_at + timedelta(days=16)) == 0  # reminded once
    plan = plans.promote(actor, plan)
    assert plan.state == PlanState.COMPLETED and "Cleanup confirmed" in plan.message
    actions = list(
        AuditEvent.objects.filter(action__startswith="flag.plan")
        .order_by("id")
        .values_list("action", flat=True)
    )
    assert actions[-4:] == [
        "flag.plan.advance",
        "flag.plan.advance",
        "flag.plan.remind",
        "flag.plan.cleanup",
    ]


def test_a_worse_verdict_steps_the_plan_back_by_itself(gated, actor, prod):
    flag, plan = gated
    experiment = experiments.start(actor, flag, prod, "control")
    end = feed(experiment, 30, (0.16, 0.10))
    assert plans.tick(end) == 1
    plan.refresh_from_db()
    assert (plan.step_index, plan.state, served_rollout(prod)) == (0, "paused", "10")
    assert "worse" in plan.message
    back = AuditEvent.objects.filter(action="flag.plan.step_back").get()
    assert back.actor_name == "flags-plans"  # the system, not a person
    assert plans.tick(end + timedelta(hours=1)) == 0  # paused: a person decides


def test_a_sample_ratio_mismatch_holds_the_plan(gated, actor, prod):
    flag, plan = gated
    experiment = experiments.start(actor, flag, prod, "control")
    end = feed(experiment, 20, (0.10, 0.16), split=(0.56, 0.44))
    assert plans.tick(end) == 1
    plan.refresh_from_db()
    assert (plan.step_index, plan.state) == (1, "paused") and "sample ratio" in plan.message


def test_gates_and_the_cleanup_step_are_validated(actor, prod):
    flag = make_flag(actor, prod)
    with pytest.raises(Exception) as bad:
        plans.start(
            actor,
            flag,
            prod,
            [
                {"percent": 10, "gate": "vibes"},
                {"cleanup": True},
                {"percent": 100},
                {"cleanup": "yes"},
            ],
        )
    paths = [e["path"] for e in bad.value.details["errors"]]
    assert paths == ["steps[0].gate", "steps[1]", "steps[3]"]


def test_the_flag_page_draws_the_timeline_with_one_click_controls(gated, prod):
    client = Client()
    client.force_login(factories.make_persona("deployer", prod))
    html = client.get("/flags/checkout/").content.decode()
    assert html.count('data-where="done"') == 1 and html.count('data-where="next"') == 2
    assert "gate: experiment verdict" in html and "cleanup: remove the flag" in html
    assert "Step back" in html and "Abort plan" in html
    client.post("/flags/checkout/prod/plan/step-back/", {"reason": "checkout errors"})
    plan = RolloutPlan.objects.get()
    assert (plan.state, plan.step_index, served_rollout(prod)) == ("paused", 0, "10")
    client.post("/flags/checkout/prod/plan/promote/")
    assert RolloutPlan.objects.get().step_index == 1
    viewer = Client()
    viewer.force_login(factories.make_persona("viewer", prod))
    assert "Step back" not in viewer.get("/flags/checkout/").content.decode()
    viewer.post("/flags/checkout/prod/plan/abort/")
    assert RolloutPlan.objects.get().state == "active"  # the viewer's click changed nothing
