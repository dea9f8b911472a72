"""The state machine in releases.actions: every transition, its audit and its time line."""

import threading

import pytest
from django.db import connection

from releases import actions
from releases.errors import Conflict, InvalidRequest, InvalidSpec, NotFound
from releases.models import (
    AuditEvent,
    Deployment,
    DeploymentEvent,
    ImmutableError,
    Release,
    State,
)
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def actor(admin):
    return factories.api_actor(admin)


def set_state(d, state):
    Deployment.objects.filter(pk=d.pk).update(state=state)
    d.refresh_from_db()
    return d


# --- releases ---------------------------------------------------------------------------------


def test_it_creates_a_release_once_and_is_idempotent_for_the_same_body(actor, service):
    first, created = actions.create_release(actor, service, version="1.0.0", artifact={"a": 1})
    again, created_again = actions.create_release(
        actor, service, version="1.0.0", artifact={"a": 1}
    )
    assert created and not created_again
    assert first.pk == again.pk
    assert AuditEvent.objects.filter(action="release.create").count() == 1


def test_it_refuses_the_same_version_with_a_different_body(actor, service):
    actions.create_release(actor, service, version="1.0.0", artifact={"a": 1})
    with pytest.raises(Conflict, match="immutable"):
        actions.create_release(actor, service, version="1.0.0", artifact={"a": 2})


def test_it_refuses_a_release_without_a_version(actor, service):
    with pytest.raises(InvalidRequest):
        actions.create_release(actor, service, version="  ")


def test_a_release_cannot_be_edited(actor, service):
    release, _ = actions.create_release(actor, service, version="1.0.0")
    release.notes = "changed"
    with pytest.raises(ImmutableError):
        release.save()
    assert Release.objects.get(pk=release.pk).notes == ""


# --- starting ---------------------------------------------------------------------------------


def test_it_starts_a_deployment_with_a_normalised_strategy(actor, target):
    factories.make_release(target.service, "1.0.0")
    d, created = actions.start_deployment(
        actor,
        service=target.service,
        environment=target.environment,
        version="1.0.0",
        strategy={"kind": "rolling", "replicas": 4, "batch_size": "50%"},
        reason="ship it",
    )
    assert created
    assert d.state == State.PENDING
    assert d.strategy["kind"] == "rolling" and d.strategy["replicas"] == 4
    assert (d.stable_slot, d.canary_slot) == ("blue", "green")
    assert d.from_release is None
    assert DeploymentEvent.objects.filter(deployment=d, kind="created").exists()
    audit = AuditEvent.objects.get(action="deployment.create")
    assert (audit.actor_name, audit.channel, audit.source_address) == (
        "admin (tests)",
        "api",
        "127.0.0.1",
    )


def test_it_uses_the_default_strategy_when_none_is_given(actor, target):
    factories.make_release(target.service, "1.0.0")
    target.service.default_strategy = {"kind": "recreate", "replicas": 3}
    target.service.save()
    d, _ = actions.start_deployment(
        actor, service=target.service, environment=target.environment, version="1.0.0"
    )
    assert d.strategy["kind"] == "recreate" and d.strategy["replicas"] == 3


def test_it_lists_every_bad_field_of_a_strategy(actor, target):
    factories.make_release(target.service, "1.0.0")
    with pytest.raises(InvalidSpec) as exc:
        actions.start_deployment(
            actor,
            service=target.service,
            environment=target.environment,
            version="1.0.0",
            strategy={"kind": "rolling", "replicas": "many", "bogus": 1},
        )
    paths = {e["path"] for e in exc.value.details["errors"]}
    assert {"replicas", "bogus"} <= paths


def test_it_needs_an_existing_release_and_target(actor, service, dev, prod):
    factories.make_target(service, dev)
    with pytest.raises(NotFound, match="no release 9.9.9"):
        actions.start_deployment(actor, service=service, environment=dev, version="9.9.9")
    factories.make_release(service, "1.0.0")
    with pytest.raises(NotFound, match="no target in prod"):
        actions.start_deployment(actor, service=service, environment=prod, version="1.0.0")


def test_an_idempotency_key_returns_the_first_deployment(actor, target):
    factories.make_release(target.service, "1.0.0")
    kwargs = dict(service=target.service, environment=target.environment, version="1.0.0")
    first, created = actions.start_deployment(actor, idempotency_key="ci-42", **kwargs)
    again, created_again = actions.start_deployment(actor, idempotency_key="ci-42", **kwargs)
    assert created and not created_again and first.pk == again.pk


def test_only_one_deployment_may_be_active_per_target(actor, target):
    first = factories.make_deployment(target, "1.0.0")
    factories.make_release(target.service, "1.1.0")
    with pytest.raises(Conflict, match=f"#{first.pk}"):
        actions.start_deployment(
            actor, service=target.service, environment=target.environment, version="1.1.0"
        )
    set_state(first, State.SUCCEEDED)
    second, _ = actions.start_deployment(
        actor, service=target.service, environment=target.environment, version="1.1.0"
    )
    assert second.state == State.PENDING


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_starts_on_one_target_make_one_deployment(admin, target):
    actor = factories.api_actor(admin)
    factories.make_release(target.service, "1.0.0")
    factories.make_release(target.service, "1.1.0")
    barrier = threading.Barrier(2)
    outcomes = []

    def start(version):
        try:
            barrier.wait(5)
            actions.start_deployment(
                actor, service=target.service, environment=target.environment, version=version
            )
            outcomes.append("created")
        except Conflict:
            outcomes.append("conflict")
        finally:
            connection.close()

    threads = [threading.Thread(target=start, args=(v,)) for v in ("1.0.0", "1.1.0")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert sorted(outcomes) == ["conflict", "created"]
    assert Deployment.objects.filter(target=target).count() == 1


# --- operator commands: every state x every command -------------------------------------------

OPERATOR_COMMANDS = {
    "promote": lambda actor, pk: actions.promote(actor, pk),
    "pause": lambda actor, pk: actions.pause(actor, pk),
    "resume": lambda actor, pk: actions.resume(actor, pk),
    "abort": lambda actor, pk: actions.abort(actor, pk),
    "rollback": lambda actor, pk: actions.rollback(actor, pk),
}
EXPECTED = {
    "promote": State.PROGRESSING,
    "pause": State.PAUSED,
    "resume": State.PROGRESSING,
    "abort": State.ROLLING_BACK,
    "rollback": State.ROLLING_BACK,
}


# rolling back a succeeded deployment starts a new one: tested on its own below
CASES = [
    (command, state.value)
    for command in sorted(OPERATOR_COMMANDS)
    for state in State
    if (command, state) != ("rollback", State.SUCCEEDED)
]


@pytest.mark.parametrize(("command", "state"), CASES)
def test_every_command_in_every_state(actor, target, state, command):
    d = set_state(factories.make_deployment(target, "1.0.0"), state)
    audits_before = AuditEvent.objects.count()
    events_before = DeploymentEvent.objects.count()
    if state not in actions.ALLOWED[command]:
        with pytest.raises(Conflict, match=f"Cannot {command}"):
            OPERATOR_COMMANDS[command](actor, d.pk)
        d.refresh_from_db()
        assert d.state == state
        assert AuditEvent.objects.count() == audits_before
        return
    result = OPERATOR_COMMANDS[command](actor, d.pk)
    d.refresh_from_db()
    expected = EXPECTED[command]
    if state == State.AWAITING_APPROVAL and command == "abort":
        expected = State.ABORTED
    assert d.state == expected
    assert result.pk == d.pk
    assert AuditEvent.objects.count() == audits_before + 1
    assert DeploymentEvent.objects.count() == events_before + 1


def test_promote_records_intent_for_the_reconciler(actor, target):
    d = set_state(factories.make_deployment(target, "1.0.0"), State.PAUSED)
    actions.promote(actor, d.pk, full=True)
    d.refresh_from_db()
    assert (d.state, d.intent) == (State.PROGRESSING, "promote_full")


def test_abort_and_rollback_remember_how_they_end(actor, target):
    d = set_state(factories.make_deployment(target, "1.0.0"), State.PROGRESSING)
    actions.abort(actor, d.pk, reason="smoke test failed")
    d.refresh_from_db()
    assert (d.state, d.rollback_outcome) == (State.ROLLING_BACK, State.ABORTED)
    audit = AuditEvent.objects.get(action="deployment.abort")
    assert audit.data == {"reason": "smoke test failed"}


def test_every_command_bumps_the_optimistic_lock_version(actor, target):
    d = set_state(factories.make_deployment(target, "1.0.0"), State.PROGRESSING)
    before = d.version
    actions.pause(actor, d.pk)
    actions.resume(actor, d.pk)
    d.refresh_from_db()
    assert d.version == before + 2


def test_a_command_on_a_missing_deployment_is_not_found(actor):
    with pytest.raises(NotFound):
        actions.pause(actor, 987654)


# --- rolling back a succeeded deployment ------------------------------------------------------


def succeed(d):
    Deployment.objects.filter(pk=d.pk).update(state=State.SUCCEEDED)
    d.target.__class__.objects.filter(pk=d.target_id).update(
        stable_release=d.release, stable_slot=d.canary_slot
    )
    d.refresh_from_db()
    d.target.refresh_from_db()
    return d


def test_rolling_back_a_succeeded_deployment_deploys_the_previous_release(actor, target):
    first = succeed(factories.make_deployment(target, "1.0.0"))
    second = succeed(factories.make_deployment(target, "1.1.0"))
    assert second.from_release.version == "1.0.0"
    back = actions.rollback(actor, second.pk, reason="bad release")
    assert back.pk != second.pk
    assert back.release.version == "1.0.0"
    assert back.from_release.version == "1.1.0"
    assert back.rollback_of_id == second.pk
    assert back.state == State.PENDING
    assert (back.stable_slot, back.canary_slot) == (second.canary_slot, second.stable_slot)
    assert back.strategy["kind"] == "rolling"
    assert AuditEvent.objects.filter(action="deployment.rollback").exists()
    # the first deployment is no longer what runs: it cannot be rolled back any more
    with pytest.raises(Conflict):
        actions.rollback(actor, first.pk)


def test_the_first_release_has_nothing_to_roll_back_to(actor, target):
    first = succeed(factories.make_deployment(target, "1.0.0"))
    with pytest.raises(Conflict, match="nothing to roll back to"):
        actions.rollback(actor, first.pk)


# --- the reconciler's lease -------------------------------------------------------------------


def test_only_one_worker_holds_a_deployment(target):
    d = factories.make_deployment(target, "1.0.0")
    assert actions.claim(d.pk, "worker-a") is not None
    assert actions.claim(d.pk, "worker-b") is None
    actions.release_claim(d.pk, "worker-a", wait=1.0)
    assert actions.claim(d.pk, "worker-b") is not None


def test_a_finished_deployment_is_not_claimed(target):
    d = set_state(factories.make_deployment(target, "1.0.0"), State.SUCCEEDED)
    assert actions.claim(d.pk, "worker-a") is None


def test_a_tick_loses_to_an_operator_command_that_landed_meanwhile(actor, target):
    d = set_state(factories.make_deployment(target, "1.0.0"), State.PROGRESSING)
    stale = Deployment.objects.get(pk=d.pk)
    actions.abort(actor, d.pk)
    recorded = actions.record_tick(
        stale,
        observed={},
        endpoint="",
        progress={"x": 1},
        step_index=1,
        step="batch 2",
        weights={},
        message="",
        new_events=[],
        new_state=State.SUCCEEDED,
    )
    assert recorded is False
    d.refresh_from_db()
    assert d.state == State.ROLLING_BACK and d.progress == {}
