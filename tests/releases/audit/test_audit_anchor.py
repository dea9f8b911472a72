"""The audit trail cannot be wiped quietly: Postgres refuses TRUNCATE and a head that moves back,
and the chain is anchored outside the database by HMAC-signed checkpoints (the key comes from the
environment, never the database) that ``manage.py audit verify`` checks -- exported on a schedule
to a file or an S3 bucket (a real ``moto_server`` process here).

Every way to rewrite history is tried: edit, delete, truncate, truncate-and-reset-head (by
someone who can switch the triggers off), a forged checkpoint -- each is refused or caught.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.db.utils import DatabaseError

from releases import actions, audit
from releases.audit import checkpoints
from releases.models import AuditChainHead, AuditEvent
from tests import factories

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the triggers are Postgres"),
]

KEY = "k" * 48
TABLE = AuditEvent._meta.db_table
HEAD = AuditChainHead._meta.db_table


@pytest.fixture(autouse=True)
def signing_key(settings):
    settings.AUDIT_CHECKPOINT_KEY = KEY
    settings.AUDIT_CHECKPOINTS = ""


@pytest.fixture
def trail(admin, target):
    d = factories.make_deployment(target, "1.0.0")
    actor = factories.api_actor(admin)
    actions.pause(actor, d.pk)
    actions.abort(actor, d.pk, reason="wrong build")
    return list(AuditEvent.objects.order_by("id"))


@contextmanager
def triggers_off():
    """As a database superuser could: this session's triggers do not fire."""
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # (TRUNCATE waits for none)
        cursor.execute("SET session_replication_role = replica")
        try:
            yield cursor
        finally:
            cursor.execute("SET session_replication_role = DEFAULT")


def refused(sql: str) -> str:
    with pytest.raises(DatabaseError) as caught, transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # (TRUNCATE waits for none)
            cursor.execute(sql)
    return str(caught.value)


def verify_fails(*args) -> str:
    with pytest.raises(CommandError) as caught:
        call_command("audit", "verify", *args)
    assert caught.value.returncode == 1
    return str(caught.value)


# --- the database refuses ---------------------------------------------------------------------


def test_truncating_the_trail_is_refused(trail):
    message = refused(f"TRUNCATE {TABLE}")

    assert "cannot be truncated" in message
    assert AuditEvent.objects.count() == len(trail)


def test_truncating_or_deleting_the_head_is_refused(trail):
    assert "cannot be truncated" in refused(f"TRUNCATE {HEAD}")
    assert "only moves forward" in refused(f"DELETE FROM {HEAD}")


def test_the_head_only_moves_forward(trail):
    message = refused(f"UPDATE {HEAD} SET length = 0, last_id = 0, last_hash = '{audit.GENESIS}'")

    assert "only moves forward" in message
    head = AuditChainHead.objects.get()
    assert (head.length, head.last_id) == (len(trail), trail[-1].pk)


def test_the_head_cannot_point_at_a_row_that_is_not_there(trail):
    message = refused(f"UPDATE {HEAD} SET length = length + 1, last_id = last_id + 1000")

    assert "only moves forward" in message


def test_editing_and_deleting_rows_are_refused(trail):
    assert "append-only" in refused(f"UPDATE {TABLE} SET actor_name = 'x' WHERE id = {trail[1].pk}")
    assert "append-only" in refused(f"DELETE FROM {TABLE} WHERE id = {trail[1].pk}")


def test_recording_still_moves_the_head_on(trail, admin, service):
    audit.record(factories.api_actor(admin), "service.update", service, {"team": "x"})

    head = AuditChainHead.objects.get()
    assert head.length == len(trail) + 1 and audit.verify().ok


# --- with the triggers off, the checkpoints catch it --------------------------------------------


def test_an_edit_behind_the_triggers_is_caught(trail):
    with triggers_off() as cursor:
        cursor.execute(f"UPDATE {TABLE} SET actor_name = 'mallory' WHERE id = %s", [trail[1].pk])

    assert f"#{trail[1].pk} was altered" in verify_fails()


def test_a_delete_behind_the_triggers_is_caught(trail):
    with triggers_off() as cursor:
        cursor.execute(f"DELETE FROM {TABLE} WHERE id = %s", [trail[1].pk])

    assert "was removed" in verify_fails()


def test_truncate_and_reset_head_is_caught_by_a_checkpoint(trail, tmp_path, settings):
    """The hole as found: after this, ``audit verify`` said "intact: 0 rows"."""
    store = tmp_path / "checkpoints.jsonl"
    settings.AUDIT_CHECKPOINTS = str(store)
    checkpoints.export()
    with triggers_off() as cursor:
        cursor.execute(f"TRUNCATE {TABLE}")
        cursor.execute(
            f"UPDATE {HEAD} SET length = 0, last_id = 0, last_hash = %s", [audit.GENESIS]
        )

    message = verify_fails()

    assert f"row #{trail[-1].pk}" in message and "checkpoint" in message


def test_a_rewritten_chain_is_caught_by_a_checkpoint(trail, tmp_path, settings):
    """Someone re-hashes every row after an edit (the chain itself needs no key): the
    checkpoint's signed hash no longer matches."""
    settings.AUDIT_CHECKPOINTS = str(tmp_path / "c.jsonl")
    checkpoints.export()
    with triggers_off() as cursor:
        cursor.execute(f"UPDATE {TABLE} SET actor_name = 'mallory' WHERE id = %s", [trail[0].pk])
        previous = audit.GENESIS
        for row in AuditEvent.objects.order_by("id"):
            new = audit.digest(previous, audit.content(row))
            cursor.execute(
                f"UPDATE {TABLE} SET prev_hash = %s, hash = %s WHERE id = %s",
                [previous, new, row.pk],
            )
            previous = new
        cursor.execute(f"UPDATE {HEAD} SET last_hash = %s", [previous])
    assert audit.verify().ok  # the chain alone is fooled

    assert "checkpoint" in verify_fails()


def test_a_forged_checkpoint_is_caught(trail, tmp_path, settings):
    store = tmp_path / "c.jsonl"
    settings.AUDIT_CHECKPOINTS = str(store)
    checkpoints.export()
    forged = json.loads(store.read_text().splitlines()[-1])
    forged["length"] = 1
    store.write_text(json.dumps(forged) + "\n")

    assert "forged" in verify_fails()


def test_a_checkpoint_signed_with_another_key_is_caught(trail, tmp_path, settings):
    settings.AUDIT_CHECKPOINTS = str(tmp_path / "c.jsonl")
    settings.AUDIT_CHECKPOINT_KEY = "another-key-" + "x" * 40
    checkpoints.export()
    settings.AUDIT_CHECKPOINT_KEY = KEY

    assert "forged" in verify_fails()


def test_verify_checks_every_checkpoint_and_says_so(trail, tmp_path, settings, admin, service):
    settings.AUDIT_CHECKPOINTS = str(tmp_path / "c.jsonl")
    checkpoints.export()
    audit.record(factories.api_actor(admin), "service.update", service, {"team": "x"})
    checkpoints.export()
    out = io.StringIO()

    call_command("audit", "verify", stdout=out)

    assert "intact" in out.getvalue() and "2 signed checkpoints" in out.getvalue()


def test_the_checkpoint_command_writes_to_a_given_file(trail, tmp_path):
    store = tmp_path / "sub" / "c.jsonl"
    out = io.StringIO()

    call_command("audit", "checkpoint", "--to", f"file://{store}", stdout=out)

    line = json.loads(store.read_text())
    assert (line["length"], line["last_id"]) == (len(trail), trail[-1].pk)
    assert "signature" in line and KEY not in store.read_text()
    assert f"#{trail[-1].pk}" in out.getvalue()


def test_a_checkpoint_needs_a_key(trail, settings, tmp_path):
    settings.AUDIT_CHECKPOINT_KEY = ""

    with pytest.raises(checkpoints.CheckpointError, match="SWITCHYARD_AUDIT_KEY"):
        checkpoints.export(str(tmp_path / "c.jsonl"))


def test_checkpoints_are_exported_on_a_schedule_when_configured():
    """The beat schedule names the task when a destination is set (settings are read at start:
    a fresh interpreter sees the environment)."""
    script = (
        "import django, os; django.setup(); from django.conf import settings; "
        "e = settings.CELERY_BEAT_SCHEDULE['audit-checkpoint']; print(e['task'], e['schedule'])"
    )
    env = {
        "SWITCHYARD_AUDIT_CHECKPOINTS": "s3://b/p/",
        "SWITCHYARD_AUDIT_CHECKPOINT_SECONDS": "600",
    }
    out = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "switchyard.settings", **env},
        timeout=60,
        check=True,
    ).stdout.split()

    assert out == [checkpoints.TASK, "600.0"]


# --- S3, against a real moto server -------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def moto_server():
    """A real moto S3 server process on loopback."""
    exe = shutil.which("moto_server", path=str(Path(sys.executable).parent))
    if exe is None:
        pytest.skip("moto_server is not installed")
    port = _free_port()
    proc = subprocess.Popen(
        [exe, "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
def bucket(moto_server, settings, monkeypatch):
    import boto3

    for name, value in (("AWS_ACCESS_KEY_ID", "test"), ("AWS_SECRET_ACCESS_KEY", "test"),
                        ("AWS_DEFAULT_REGION", "us-east-1")):  # fmt: skip
        monkeypatch.setenv(name, value)
    settings.AUDIT_S3_ENDPOINT_URL = moto_server
    name = f"audit-{time.time_ns()}"
    boto3.client("s3", endpoint_url=moto_server).create_bucket(Bucket=name)
    return name


def test_checkpoints_go_to_s3_and_verify_reads_them_back(trail, bucket, settings, admin, service):
    settings.AUDIT_CHECKPOINTS = f"s3://{bucket}/switchyard/"
    checkpoints.export()
    audit.record(factories.api_actor(admin), "service.update", service, {"team": "x"})
    checkpoints.export()
    out = io.StringIO()

    call_command("audit", "verify", stdout=out)

    import boto3

    listed = boto3.client("s3", endpoint_url=settings.AUDIT_S3_ENDPOINT_URL).list_objects_v2(
        Bucket=bucket, Prefix="switchyard/"
    )
    assert len(listed["Contents"]) == 2
    assert "2 signed checkpoints" in out.getvalue()


def test_a_wiped_trail_is_caught_by_the_s3_checkpoint(trail, bucket, settings):
    settings.AUDIT_CHECKPOINTS = f"s3://{bucket}/sw/"
    checkpoints.export()
    with triggers_off() as cursor:
        cursor.execute(f"TRUNCATE {TABLE}")
        cursor.execute(
            f"UPDATE {HEAD} SET length = 0, last_id = 0, last_hash = %s", [audit.GENESIS]
        )

    assert "checkpoint" in verify_fails()


def test_an_unreachable_bucket_is_an_error_that_names_it(trail, settings):
    settings.AUDIT_S3_ENDPOINT_URL = f"http://127.0.0.1:{_free_port()}"

    with pytest.raises(checkpoints.CheckpointError, match="s3://nowhere/"):
        checkpoints.export("s3://nowhere/")
