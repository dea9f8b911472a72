"""Rollout plans: a flag's percentage ladder stepped like a canary -- timed steps move on when
their pause is over (the tick is driven with an explicit clock), manual steps wait for a person,
the kill switch holds a plan, step-back and abort lower the rollout; all audited."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from flags import actions, plans, state
from flags.models import FlagSetting, PlanState, RolloutPlan
from releases.governance import tokens
from releases.models import AuditEvent
from tests import factories
from tests.flags.conftest import make_flag

pytestmark = pytest.mark.django_db

LADDER = [
    {"percent": 1, "pause": "10m"},
    {"percent": 10, "pause": "1h"},
    {"percent": 50},
    {"percent": 100},
]


def served_rollout(env) -> str:
    feature = state.build(env.pk, 0).document["features"][0]
    return feature["strategies"][0]["parameters"]["rollout"] if feature["enabled"] else "off"


def test_timed_steps_advance_when_their_pause_is_over_and_manual_ones_wait(actor, prod):
    flag = make_flag(actor, prod, enabled=False)
    plan = plans.start(actor, flag, prod, LADDER)
    assert served_rollout(prod) == "1"
    start = plan.step_started_at
    assert plans.tick(start + timedelta(minutes=9)) == 0
    assert plans.tick(start + timedelta(minutes=11)) == 1
    assert served_rollout(prod) == "10"
    plan.refresh_from_db()
    assert plans.tick(plan.step_started_at + timedelta(hours=2)) == 1
    assert served_rollout(prod) == "50"
    assert plans.tick(timezone.now() + timedelta(days=30)) == 0  # 50 % waits for a person
    plan = plans.promote(actor, RolloutPlan.objects.get())
    assert plan.state == PlanState.COMPLETED and served_rollout(prod) == "100"
    assert "remove the flag" in plan.message
    moves = AuditEvent.objects.filter(action__startswith="flag.plan").values_list(
        "action", flat=True
    )
    assert sorted(moves) == [
        "flag.plan.advance",
        "flag.plan.advance",
        "flag.plan.promote",
        "flag.plan.start",
    ]


def test_the_kill_switch_holds_the_plan_where_it_is(actor, prod):
    flag = make_flag(actor, prod)
    plan = plans.start(actor, flag, prod, LADDER)
    actions.kill(actor, flag, prod, "errors at 1 %")
    assert plans.tick(plan.step_started_at + timedelta(hours=1)) == 1
    plan.refresh_from_db()
    assert plan.state == PlanState.PAUSED and plan.step_index == 0
    assert "kill switch" in plan.message


def test_step_back_lowers_the_rollout_and_waits(actor, prod):
    flag = make_flag(actor, prod)
    plan = plans.start(actor, flag, prod, LADDER)
    plan = plans.promote(actor, plan)
    plan = plans.step_back(actor, plan, "latency up")
    assert (plan.state, plan.percent, served_rollout(prod)) == ("paused", 1, "1")
    assert plans.tick(timezone.now() + timedelta(days=1)) == 0  # paused plans do not move
    aborted = plans.abort(actor, plan)
    assert aborted.state == PlanState.ABORTED and served_rollout(prod) == "0"


def test_a_plan_is_validated_and_one_is_open_at_a_time(actor, prod):
    flag = make_flag(actor, prod)
    with pytest.raises(Exception) as bad:
        plans.start(actor, flag, prod, [{"percent": 10}, {"percent": 5}, {"percent": 60}])
    paths = [e["path"] for e in bad.value.details["errors"]]
    assert paths == ["steps[1].percent", "steps[2].percent"]
    plans.start(actor, flag, prod, LADDER)
    with pytest.raises(Exception, match="already has an open plan"):
        plans.start(actor, flag, prod, LADDER)


def test_plans_through_the_api_need_the_deployer_role(prod, admin):
    make_flag(factories.api_actor(admin), prod)

    def caller(user):
        token = tokens.create(user, "t")[1]
        return lambda path, body=None: Client().post(
            "/api/v1" + path,
            json.dumps(body or {}),
            content_type="application/json",
            headers={"Authorization": f"Bearer {token}"},
        )

    viewer = caller(factories.make_persona("viewer", prod))
    deployer = caller(factories.make_persona("deployer", prod))
    assert viewer("/flags/checkout/environments/prod/plan", {"steps": LADDER}).status_code == 403
    started = deployer("/flags/checkout/environments/prod/plan", {"steps": LADDER})
    assert started.status_code == 201 and started.json()["percent"] == 1
    promoted = deployer("/flags/checkout/environments/prod/plan/promote")
    assert promoted.json()["percent"] == 10
    assert deployer("/flags/checkout/environments/prod/plan/sideways").status_code == 404


def test_the_flag_page_shows_the_plan_step(actor, prod, admin):
    flag = make_flag(actor, prod)
    plans.start(actor, flag, prod, LADDER)
    client = Client()
    client.force_login(admin)
    html = client.get("/flags/checkout/").content.decode()
    assert "Rollout plan" in html and "<strong>1 %</strong>" in html


def test_a_segment_step_comes_first_and_stays_on_as_the_percentages_climb(actor, prod):
    """Internal users -> 10 % -> 100 %: at the segment step the flag is on for the segment only;
    the segment stays on at 10 %; a step back past it or an abort takes it off again."""
    from flags.engine import compile_features, evaluate

    actions.save_segment(
        actor,
        "internal",
        [{"contextName": "email", "operator": "STR_ENDS_WITH", "values": ["@example.com"]}],
    )
    flag = make_flag(actor, prod, enabled=False)
    staff = {"userId": "ada", "properties": {"email": "ada@example.com"}}
    users = [
        {"userId": f"u{n}", "properties": {"email": f"u{n}@elsewhere.org"}} for n in range(400)
    ]

    def on(context) -> bool:
        compiled = compile_features(state.build(prod.pk, 0).document)
        return evaluate(compiled, flag.key, context).enabled

    def share() -> float:
        compiled = compile_features(state.build(prod.pk, 0).document)
        return sum(evaluate(compiled, flag.key, u).enabled for u in users) / len(users)

    steps = [{"segment": "internal", "pause": "1d"}, {"percent": 10}, {"percent": 100}]
    plan = plans.start(actor, flag, prod, steps)
    assert on(staff) and share() == 0
    from flags.web import timeline

    assert timeline(plan)[0]["label"] == "segment internal"
    plans.tick(plan.step_started_at + timedelta(days=1, minutes=1))
    assert on(staff) and 0.03 < share() < 0.2
    plan = plans.step_back(actor, RolloutPlan.objects.get(), "too early")
    assert on(staff) and share() == 0  # back at the segment step: the segment still on
    plan = plans.step_back(actor, plan, "not yet at all")
    assert not on(staff) and share() == 0
    plans.abort(actor, plan, "stop")
    assert not on(staff)
    strategies = FlagSetting.objects.get(flag=flag, environment=prod).strategies
    assert not [s for s in strategies if str(s.get("id", "")).startswith(actions.PLAN_SEGMENT)]


def test_a_segment_step_is_checked(actor, prod):
    flag = make_flag(actor, prod, enabled=False)
    for steps, path in (
        ([{"segment": "nobody"}, {"percent": 100}], "steps[0].segment"),
        ([{"percent": 10}, {"segment": "nobody"}, {"percent": 100}], "steps[1].segment"),
    ):
        with pytest.raises(Exception) as caught:
            plans.start(actor, flag, prod, steps)
        assert path in json.dumps(caught.value.details), caught.value.details
