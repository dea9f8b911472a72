"""Roles and approvals through ``releases.actions`` (the one place they are enforced): who
may approve, four eyes, quorum, expiry, rejection, canary step gates, teams and narrowed roles.
The full role x action x channel matrix is tests/releases/test_permissions.py."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.utils import timezone

from releases import actions
from releases.errors import ApprovalRequired, Conflict, Forbidden, Frozen, NotFound
from releases.governance import approvals, policy
from releases.models import Approval, AuditEvent, Deployment, DeploymentEvent, State
from tests import factories

pytestmark = pytest.mark.django_db

CANARY = {
    "kind": "canary",
    "steps": [{"set_weight": 10}, {"pause": {}}, {"set_weight": 50}, {"pause": {}}],
}


@pytest.fixture
def prod_target(service, prod):
    return factories.make_target(service, prod)


@pytest.fixture
def protected(prod):
    return factories.make_policy(prod, required_approvals=1)


@pytest.fixture
def deployer(prod):
    return factories.make_persona("deployer", prod)


@pytest.fixture
def approver(prod):
    return factories.make_persona("approver", prod)


def actor(user):
    return factories.api_actor(user)


def start(user, target, version="1.1.0", **kwargs) -> Deployment:
    factories.make_release(target.service, version)
    return actions.start_deployment(
        actor(user),
        service=target.service,
        environment=target.environment,
        version=version,
        **kwargs,
    )[0]


# --- awaiting approval ------------------------------------------------------------------------


def test_a_protected_environment_holds_new_deployments_for_approval(
    prod_target, protected, deployer
):
    d = start(deployer, prod_target)

    assert d.state == State.AWAITING_APPROVAL
    assert d.next_tick_at is None  # the reconcile loop leaves it alone
    assert actions.claim(d.pk, "worker") is None
    assert DeploymentEvent.objects.filter(deployment=d, message__contains="waiting for 1").exists()


def test_an_unprotected_environment_starts_at_once(target, admin):
    assert factories.make_deployment(target).state == State.PENDING


def test_an_approval_starts_the_rollout(prod_target, protected, deployer, approver):
    d = start(deployer, prod_target)

    result = actions.approve(actor(approver), d.pk, comment="looks good")

    assert result.state == State.PENDING and result.next_tick_at is not None
    approval = Approval.objects.get(deployment=d)
    assert (approval.decision, approval.comment, approval.role) == (
        "approve",
        "looks good",
        "approver",
    )
    audit = AuditEvent.objects.get(action="deployment.approve")
    assert audit.data["comment"] == "looks good" and audit.actor_name.startswith("approver")


def test_self_approval_is_refused(prod_target, protected, approver):
    d = start(approver, prod_target)  # an approver may deploy, but not approve their own

    with pytest.raises(Forbidden) as caught:
        actions.approve(actor(approver), d.pk)

    assert caught.value.code == "self_approval"
    d.refresh_from_db()
    assert d.state == State.AWAITING_APPROVAL
    assert not Approval.objects.exists()


def test_a_policy_may_allow_self_approval(prod_target, prod, approver):
    factories.make_policy(prod, required_approvals=1, allow_self_approval=True)
    d = start(approver, prod_target)

    assert actions.approve(actor(approver), d.pk).state == State.PENDING


def test_each_person_counts_once_towards_the_quorum(prod_target, prod, deployer, approver):
    factories.make_policy(prod, required_approvals=2)
    d = start(deployer, prod_target)

    assert actions.approve(actor(approver), d.pk).state == State.AWAITING_APPROVAL
    with pytest.raises(Conflict, match="already approved"):
        actions.approve(actor(approver), d.pk)
    second = factories.make_persona("approver2", prod, role="approver")
    assert actions.approve(actor(second), d.pk).state == State.PENDING


def test_an_expired_approval_does_not_count(prod_target, prod, deployer, approver):
    factories.make_policy(prod, required_approvals=2, approval_ttl=timedelta(hours=4))
    d = start(deployer, prod_target)
    actions.approve(actor(approver), d.pk)
    first = Approval.objects.get()
    assert first.expires_at == first.created_at + timedelta(hours=4)
    Approval.objects.filter(pk=first.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    second = factories.make_persona("approver2", prod, role="approver")

    result = actions.approve(actor(second), d.pk)

    assert result.state == State.AWAITING_APPROVAL  # 1 of 2: the first one expired
    status = approvals.approval_status(result)
    assert (status.approved_by, status.expired) == (["approver2 (tests)"], 1)
    # the expired approver may approve again, and now it counts
    assert actions.approve(actor(approver), d.pk).state == State.PENDING


def test_a_rejection_ends_the_deployment(prod_target, protected, deployer, approver):
    d = start(deployer, prod_target)

    result = actions.reject(actor(approver), d.pk, comment="not during the sale")

    assert result.state == State.REJECTED and result.finished_at is not None
    assert Approval.objects.get().decision == "reject"
    assert AuditEvent.objects.get(action="deployment.reject").data["comment"] == (
        "not during the sale"
    )
    with pytest.raises(Conflict, match="Nothing awaits"):
        actions.approve(actor(approver), d.pk)


def test_a_deployer_may_not_approve(prod_target, protected, deployer, prod):
    d = start(factories.make_user("owner"), prod_target)

    with pytest.raises(Forbidden, match="needs the approver role"):
        actions.approve(actor(deployer), d.pk)
    with pytest.raises(Forbidden):
        actions.reject(actor(deployer), d.pk)


def test_the_policy_chooses_the_approver_role(prod_target, prod, deployer, approver):
    factories.make_policy(prod, required_approvals=1, approver_role="admin")
    d = start(deployer, prod_target)

    with pytest.raises(Forbidden, match="needs the admin role"):
        actions.approve(actor(approver), d.pk)
    boss = factories.make_persona("admin", prod)
    assert actions.approve(actor(boss), d.pk).state == State.PENDING


def test_promote_or_resume_before_approval_is_approval_required(prod_target, protected, deployer):
    d = start(deployer, prod_target)

    with pytest.raises(ApprovalRequired) as caught:
        actions.promote(actor(deployer), d.pk)
    assert caught.value.code == "approval_required" and caught.value.status == 409
    with pytest.raises(ApprovalRequired):
        actions.resume(actor(deployer), d.pk)
    assert actions.abort(actor(deployer), d.pk).state == State.ABORTED  # abort always works


def test_the_last_approval_during_a_freeze_is_refused_unless_an_admin_overrides(
    prod_target, protected, deployer, approver, prod
):
    d = start(deployer, prod_target)
    factories.make_freeze(prod, name="Launch day")

    with pytest.raises(Frozen, match="Launch day"):
        actions.approve(actor(approver), d.pk)
    assert not Approval.objects.exists()  # nothing was recorded
    boss = factories.make_persona("admin", prod)
    result = actions.approve(actor(boss), d.pk, override_freeze="the fix for the launch")

    assert result.state == State.PENDING
    assert result.freeze_overrides.get().reason == "the fix for the launch"


def test_a_rollback_never_waits_for_approval(prod_target, deployer, admin, prod):
    first = start(admin, prod_target, "1.0.0")
    finish(first)
    shipped = start(admin, prod_target, "1.1.0")
    finish(shipped)
    factories.make_policy(prod, required_approvals=2)

    back = actions.rollback(actor(deployer), shipped.pk)

    assert back.rollback_of_id == shipped.pk and back.state == State.PENDING


def finish(d, state=State.SUCCEEDED):
    d.refresh_from_db()
    if d.state == State.PENDING:
        assert actions.mark_started(d)
    assert actions.record_tick(
        d,
        observed={},
        endpoint="",
        progress={},
        step_index=0,
        step="",
        weights={},
        message="",
        new_events=[],
        new_state=state,
    )


# --- canary step gates (a manual judgment) -----------------------------------------------------


def at_step(d: Deployment, index: int) -> Deployment:
    d.refresh_from_db()
    if d.state == State.PENDING:
        assert actions.mark_started(d)
    Deployment.objects.filter(pk=d.pk).update(step_index=index, state=State.PROGRESSING)
    d.refresh_from_db()
    return d


def test_a_step_gate_waits_for_an_approval(prod_target, prod, deployer, approver):
    factories.make_policy(prod, required_approvals=0, step_approvals=[2])
    d = start(deployer, prod_target, strategy=CANARY)
    assert d.state == State.PENDING  # no approval to start
    assert approvals.step_gate_open(d, 1)
    assert not approvals.step_gate_open(d, 2)
    d = at_step(d, 2)

    with pytest.raises(ApprovalRequired, match="step 3 waits"):
        actions.promote(actor(deployer), d.pk)
    with pytest.raises(Forbidden):
        actions.approve(actor(deployer), d.pk)
    actions.approve(actor(approver), d.pk, comment="canary metrics are fine")

    assert approvals.step_gate_open(d, 2)
    assert Approval.objects.get().step_index == 2
    with pytest.raises(Conflict, match="Nothing awaits"):
        actions.approve(actor(approver), d.pk)


def test_a_full_promote_may_not_skip_a_gate_ahead(prod_target, prod, deployer):
    factories.make_policy(prod, step_approvals=[3])
    d = at_step(start(deployer, prod_target, strategy=CANARY), 1)

    with pytest.raises(ApprovalRequired):
        actions.promote(actor(deployer), d.pk, full=True)
    actions.promote(actor(deployer), d.pk)  # the next step is not gated


def test_rejecting_a_step_gate_rolls_back_and_ends_rejected(prod_target, prod, deployer, approver):
    factories.make_policy(prod, step_approvals=[2])
    d = at_step(start(deployer, prod_target, strategy=CANARY), 2)

    result = actions.reject(actor(approver), d.pk, comment="p99 latency doubled")

    assert result.state == State.ROLLING_BACK and result.rollback_outcome == State.REJECTED


# --- who holds which role ---------------------------------------------------------------------


def test_a_team_role_applies_to_every_member(prod_target, protected, deployer):
    team = Group.objects.create(name="sre")
    member = factories.make_user("sam", superuser=False)
    member.groups.add(team)
    factories.grant(team, "approver", prod_target.environment)
    d = start(deployer, prod_target)

    assert actions.approve(actor(member), d.pk).state == State.PENDING


def test_a_role_narrowed_to_a_service_does_not_reach_the_others(prod, admin):
    api, web = factories.make_service("api"), factories.make_service("web")
    api_prod, web_prod = factories.make_target(api, prod), factories.make_target(web, prod)
    user = factories.make_persona("deployer", prod, api)

    assert start(user, api_prod).state == State.PENDING
    with pytest.raises(NotFound):
        start(user, web_prod)
    assert policy.role_for(user, api_prod) == "deployer"
    assert policy.role_for(user, web_prod) is None


def test_a_role_in_one_environment_does_not_reach_another(service, dev, prod):
    user = factories.make_persona("deployer", dev)
    dev_target, prod_target = (
        factories.make_target(service, dev),
        factories.make_target(service, prod),
    )

    assert start(user, dev_target).state == State.PENDING
    with pytest.raises(NotFound, match="There is no environment 'prod'"):
        start(user, prod_target)
    # registering a release is about the service, which the user works on
    factories.make_release(service, "2.0.0", actor=actor(user))


def test_roles_are_ordered(prod_target):
    d_user = factories.make_persona("approver", prod_target.environment)

    assert policy.rank_in(d_user, policy.scope_of(prod_target)) == policy.RANK["approver"]
    assert policy.role_for(factories.make_user("root"), prod_target) == "admin"  # superuser
    assert policy.role_for(factories.make_persona("outsider"), prod_target) is None


def test_a_deactivated_user_holds_no_role(prod_target, deployer):
    deployer.is_active = False
    deployer.save()

    with pytest.raises(NotFound):
        start(deployer, prod_target)
