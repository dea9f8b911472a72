"""The audit trail: every mutation recorded, in a hash chain the application cannot rewrite, that
``manage.py audit verify`` checks and ``manage.py audit export`` writes out as JSON lines."""

from __future__ import annotations

import io
import json
from contextlib import contextmanager

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.db.utils import DatabaseError

from releases import actions, audit
from releases.actors import Actor
from releases.governance import tokens
from releases.models import AuditChainHead, AuditEvent, Channel, ImmutableError
from tests import factories

pytestmark = pytest.mark.django_db

POSTGRES = connection.vendor == "postgresql"
TABLE = AuditEvent._meta.db_table


@pytest.fixture
def trail(admin, target):
    """Five events from the product's own commands."""
    d = factories.make_deployment(target, "1.0.0")  # release.create, deployment.create
    actor = factories.api_actor(admin)
    actions.pause(actor, d.pk)
    actions.resume(actor, d.pk)
    actions.abort(actor, d.pk, reason="wrong build")
    rows = list(AuditEvent.objects.order_by("id"))
    assert len(rows) == 5
    return rows


@contextmanager
def tampering():
    """Write to the table behind the application's back, as someone with database access
    could: on Postgres the append-only trigger is bypassed for this session."""
    with connection.cursor() as cursor:
        if POSTGRES:
            cursor.execute("SET session_replication_role = replica")
        try:
            yield cursor
        finally:
            if POSTGRES:
                cursor.execute("SET session_replication_role = DEFAULT")


def verify_fails() -> str:
    with pytest.raises(CommandError) as caught:
        call_command("audit", "verify")
    assert caught.value.returncode == 1
    return str(caught.value)


# --- the chain --------------------------------------------------------------------------------


def test_each_row_carries_its_predecessors_hash(trail):
    assert trail[0].prev_hash == audit.GENESIS
    for previous, row in zip(trail, trail[1:], strict=False):
        assert row.prev_hash == previous.hash
        assert row.hash == audit.digest(row.prev_hash, audit.content(row))
    head = AuditChainHead.objects.get()
    assert (head.last_id, head.last_hash, head.length) == (trail[-1].pk, trail[-1].hash, 5)


def test_verify_passes_on_an_intact_chain(trail):
    out = io.StringIO()
    call_command("audit", "verify", stdout=out)

    assert "intact: 5 rows" in out.getvalue()


def test_every_row_records_who_where_how_and_what(trail, admin):
    abort = trail[-1]

    assert (abort.action, abort.object_type, abort.channel) == (
        "deployment.abort",
        "deployment",
        Channel.API,
    )
    assert abort.actor == admin and abort.actor_name == "admin (tests)"
    assert abort.source_address == "127.0.0.1"
    assert abort.data == {"reason": "wrong build"}


def test_a_change_records_the_values_before_and_after(client, admin, service):
    _, token = tokens.create(admin, "ci")
    response = client.patch(
        "/api/v1/services/api",
        data=json.dumps({"team": "payments"}),
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 200

    event = AuditEvent.objects.get(action="service.update")
    assert (event.before, event.data) == ({"team": ""}, {"team": "payments"})
    assert event.actor_name == "admin (ci)" and event.channel == Channel.API
    assert audit.verify().ok


def test_system_actions_are_audited_too(target, admin):
    d = factories.make_deployment(target)
    assert actions.mark_started(d)

    event = AuditEvent.objects.get(action="deployment.start")
    assert (event.channel, event.actor, event.actor_name) == (Channel.SYSTEM, None, "reconciler")


# --- append-only ------------------------------------------------------------------------------


def test_the_model_refuses_to_change_or_delete_a_row(trail):
    row = trail[0]
    row.action = "nothing.happened"

    with pytest.raises(ImmutableError):
        row.save()
    with pytest.raises(ImmutableError):
        row.delete()


@pytest.mark.skipif(not POSTGRES, reason="the append-only trigger is Postgres's")
@pytest.mark.parametrize(
    "statement",
    [
        f"UPDATE {TABLE} SET action = 'nothing.happened'",
        f"DELETE FROM {TABLE}",
    ],
)
def test_the_database_refuses_to_change_or_delete_a_row(trail, statement):
    with pytest.raises(DatabaseError, match="append-only"):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(statement)
    assert AuditEvent.objects.count() == 5


def test_deleting_a_user_keeps_their_rows(trail, admin):
    other = factories.make_user("leaver", superuser=False)
    audit.record(Actor(user=other, channel=Channel.UI), "session.login", other)

    other.delete()  # the foreign key is set to NULL: the one update the trigger allows

    row = AuditEvent.objects.get(action="session.login")
    assert row.actor is None and row.actor_name == "leaver"
    assert audit.verify().ok


# --- tampering is detected ----------------------------------------------------------------------


def test_verify_names_an_edited_row(trail):
    victim = trail[2]
    with tampering() as cursor:
        cursor.execute(
            f"UPDATE {TABLE} SET actor_name = %s WHERE id = %s", ["someone else", victim.pk]
        )

    message = verify_fails()

    assert f"#{victim.pk} was altered" in message


def test_verify_names_an_edited_row_even_when_its_hash_was_recomputed(trail):
    victim = trail[1]
    victim.actor_name = "someone else"
    forged = audit.digest(victim.prev_hash, audit.content(victim))
    with tampering() as cursor:
        cursor.execute(
            f"UPDATE {TABLE} SET actor_name = %s, hash = %s WHERE id = %s",
            ["someone else", forged, victim.pk],
        )

    message = verify_fails()

    assert f"before audit row #{trail[2].pk}" in message  # the next link no longer holds


def test_verify_names_a_deleted_row(trail):
    with tampering() as cursor:
        cursor.execute(f"DELETE FROM {TABLE} WHERE id = %s", [trail[2].pk])

    message = verify_fails()

    assert "removed" in message and f"#{trail[3].pk}" in message and f"#{trail[1].pk}" in message


def test_verify_notices_rows_removed_from_the_end(trail):
    with tampering() as cursor:
        cursor.execute(f"DELETE FROM {TABLE} WHERE id = %s", [trail[-1].pk])

    message = verify_fails()

    assert "removed from the end" in message and f"#{trail[-1].pk}" in message


def test_verify_names_a_reordered_row(trail):
    a, b = trail[1], trail[3]
    with tampering() as cursor:  # swap two rows' places (ids)
        cursor.execute(f"UPDATE {TABLE} SET id = %s WHERE id = %s", [-1, a.pk])
        cursor.execute(f"UPDATE {TABLE} SET id = %s WHERE id = %s", [a.pk, b.pk])
        cursor.execute(f"UPDATE {TABLE} SET id = %s WHERE id = %s", [b.pk, -1])

    message = verify_fails()

    assert f"#{a.pk} is out of order" in message


def test_the_chain_continues_after_the_head_row_is_lost(trail, admin):
    with tampering() as cursor:  # the head refuses DELETE on Postgres (migration 0007)
        cursor.execute(f"DELETE FROM {AuditChainHead._meta.db_table}")

    audit.record(factories.api_actor(admin), "service.update", trail[0])

    assert audit.verify().ok


# --- export -------------------------------------------------------------------------------------


def test_export_writes_json_lines_oldest_first(trail):
    out = io.StringIO()
    call_command("audit", "export", stdout=out)

    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [line["id"] for line in lines] == [row.pk for row in trail]
    first = lines[0]
    assert first["action"] == "release.create" and first["object"]["type"] == "release"
    assert {"actor", "channel", "source_address", "data", "before", "hash", "prev_hash"} <= set(
        first
    )


def test_export_filters(trail, tmp_path):
    path = tmp_path / "audit.jsonl"
    deployment = f"deployment:{trail[1].object_id}"
    call_command(
        "audit", "export", "--action", "deployment.", "--object", deployment,
        "--output", str(path), stderr=io.StringIO(),
    )  # fmt: skip

    actions = [json.loads(line)["action"] for line in path.read_text().splitlines()]
    assert actions == ["deployment.create", "deployment.pause", "deployment.resume",
                       "deployment.abort"]  # fmt: skip
    out = io.StringIO()
    call_command("audit", "export", "--action", "deployment.pause", "--channel", "api", stdout=out)
    assert len(out.getvalue().splitlines()) == 1
    out = io.StringIO()
    call_command("audit", "export", "--since", "2999-01-01", stdout=out)
    assert out.getvalue() == ""


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_keep_one_unbroken_chain(admin, service):
    """Many processes record at once (web, API, workers): the head row orders them."""
    import threading

    errors = []

    def write(n):
        try:
            actor = factories.api_actor(admin)
            for i in range(10):
                with transaction.atomic():
                    audit.record(actor, "service.update", service, {"writer": n, "i": i})
        except Exception as exc:  # noqa: BLE001 -- reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)

    assert errors == []
    verdict = audit.verify()
    assert verdict.ok, verdict.problem
    assert AuditEvent.objects.filter(action="service.update").count() == 40


@pytest.mark.django_db(transaction=True)
def test_a_writer_that_commits_while_another_creates_the_head_breaks_neither(admin, service):
    """The head row is missing (a fresh database, a test flush) and two writers race to create
    it: the second commits its event right after the first has begun reading the trail. The
    first must read the trail's length and last row as one snapshot -- seen in CI as "row #0
    with that hash does not exist" when it counted the other's event but not its last row."""
    import threading

    assert not AuditChainHead.objects.exists()
    actor = factories.api_actor(admin)
    other_errors = []

    def other_writer():
        try:
            audit.record(actor, "service.update", service, {"writer": "other"})
        except Exception as exc:  # noqa: BLE001 -- reported below
            other_errors.append(exc)
        finally:
            connection.close()

    fired = []

    def commit_between_reads(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        if not fired and TABLE in sql and sql.lstrip().upper().startswith("SELECT"):
            fired.append(sql)
            t = threading.Thread(target=other_writer)
            t.start()
            t.join(30)
        return result

    with connection.execute_wrapper(commit_between_reads):
        with transaction.atomic():
            audit.record(actor, "service.update", service, {"writer": "first"})

    assert fired, "the head was created without reading the trail"
    assert other_errors == []
    verdict = audit.verify()
    assert verdict.ok, verdict.problem
    assert AuditEvent.objects.filter(action="service.update").count() == 2
