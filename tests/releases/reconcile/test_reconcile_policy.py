"""The reconcile loop under the environment's policy, against a real fleet agent: a freeze window
holds automatic promotions but not a person's promote nor a rollback; a step gate holds its step
until an approver approves it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from releases import actions
from releases.models import DeploymentEvent, State
from releases.models.governance import EnvironmentPolicy, FreezeWindow
from tests import factories
from tests.releases.reconcile.test_reconcile_switch import (  # noqa: F401  (fixtures)
    agent,
    canary_spec,
    deploy,
    fleet,
    live,
    tick_until,
)
from tests.releases.reconcile.test_reconcile_switch import (
    recorded as recorded,
)

pytestmark = pytest.mark.django_db(transaction=True)


def freeze(environment, minutes=10):
    now = timezone.now()
    return FreezeWindow.objects.create(
        name="quarter close",
        environment=environment,
        reason="finance closes the books",
        starts_at=now - timedelta(minutes=1),
        ends_at=now + timedelta(minutes=minutes),
    )


def test_a_freeze_holds_the_automatic_promotion_and_a_person_may_still_promote(target, recorded):
    live(target)
    d = deploy(
        target,
        "2.0.0",
        canary_spec({"set_weight": 20}, {"pause": {"duration": "1s"}}, {"set_weight": 60}),
    )
    d = tick_until(d, lambda d: d.weights.get("canary") == 20, what="the first step")
    freeze(target.environment)
    d = tick_until(d, lambda d: "quarter close" in d.message, what="the freeze to hold it")
    assert d.state == State.PROGRESSING and d.weights.get("canary") == 20
    assert DeploymentEvent.objects.filter(deployment=d, kind="hold").count() == 1
    # a person's promote is not an automatic promotion: it goes on
    actions.promote(factories.api_actor(), d.pk)
    d = tick_until(d, lambda d: d.state == State.SUCCEEDED, what="the promoted rollout")


def test_a_freeze_never_blocks_a_rollback(target, recorded):
    live(target)
    d = deploy(target, "2.0.0", canary_spec({"set_weight": 30}, {"pause": {}}))
    d = tick_until(d, lambda d: d.state == State.PAUSED, what="the pause")
    freeze(target.environment)
    actions.abort(factories.api_actor(), d.pk)
    d = tick_until(d, lambda d: d.state == State.ABORTED, what="the abort")
    assert d.weights.get("stable") == 100


def test_a_step_gate_holds_its_step_until_an_approver_approves(target, recorded):
    live(target)
    EnvironmentPolicy.objects.create(environment=target.environment, step_approvals=[2])
    d = deploy(
        target,
        "2.0.0",
        canary_spec({"set_weight": 20}, {"pause": {"duration": "1s"}}, {"set_weight": 70}),
    )
    d = tick_until(d, lambda d: "waits for approval" in d.message, what="the gate")
    assert d.step_index == 2 and d.weights.get("canary") == 20
    for _ in range(3):  # ticking on changes nothing while the gate is closed
        d = tick_until(d, lambda d: True)
    assert d.weights.get("canary") == 20
    approver = factories.make_user("approver-1")
    actions.approve(factories.api_actor(approver), d.pk, comment="numbers look fine")
    d = tick_until(d, lambda d: d.state == State.SUCCEEDED, what="the approved rollout")
