"""The audit trail: one AuditEvent per action, from every channel, in a hash chain.

Each row stores the hash of its predecessor (``prev_hash``) and its own ``hash`` over its
content and ``prev_hash``, so altering, removing or reordering rows breaks the chain where it
happened: :func:`verify` (``manage.py audit verify``) names the first such row. Inserts are
serialised by locking the one ``AuditChainHead`` row, which also remembers the last row (so a
removed tail is noticed too). The lock is held until the surrounding transaction commits: keep
transactions that record audit events short (every command's is). On Postgres a trigger refuses
UPDATE and DELETE on the table (migration 0003); the model refuses them too.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Count, F, Max
from django.utils import timezone

from releases.actors import Actor
from releases.models import AuditChainHead, AuditEvent

GENESIS = "0" * 64
HEAD = 1
# the fields a row's hash covers, in this order (never the id: reordering shows as a broken link)
HASHED = (
    "actor_name",
    "channel",
    "action",
    "object_type",
    "object_id",
    "object_repr",
    "data",
    "before",
    "source_address",
    "created_at",
)


def plain(value: Any) -> Any:
    """``value`` as the JSON the database will give back (dates and other objects as text)."""
    return json.loads(json.dumps(value, default=str))


def content(row) -> dict:
    """The hashed content of an AuditEvent (saved or about to be)."""
    values = {name: getattr(row, name) for name in HASHED}
    values["created_at"] = row.created_at.astimezone(UTC).isoformat()
    return values


def digest(prev_hash: str, values: dict) -> str:
    payload = json.dumps(values, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(f"{prev_hash}\n{payload}".encode()).hexdigest()


def _address(value: str | None) -> str | None:
    # as the inet column will return it (IPv6 compressed)
    return AuditEvent._meta.get_field("source_address").get_prep_value(value) if value else None


def record(
    actor: Actor,
    action: str,
    obj: Any = None,
    data: dict | None = None,
    *,
    before: dict | None = None,
    object_type: str = "",
    object_id: str = "",
    object_repr: str = "",
) -> AuditEvent:
    """Append one event: ``data`` holds what the action did (for a change: the values after),
    ``before`` the values it replaced. ``obj`` is a model instance, or give ``object_type`` /
    ``object_id`` / ``object_repr`` for something that is not a row (e.g. a sign-in)."""
    if obj is not None:
        object_type = object_type or obj._meta.model_name
        object_id = object_id or str(obj.pk)
        object_repr = object_repr or str(obj)
    event = AuditEvent(
        actor=actor.user,
        actor_name=actor.name[:150],
        channel=actor.channel,
        action=action[:64],
        object_type=object_type[:64],
        object_id=str(object_id)[:64],
        object_repr=object_repr[:300],
        data=plain(data or {}),
        before=plain(before) if before is not None else None,
        source_address=_address(actor.address),
        created_at=timezone.now(),
    )
    with transaction.atomic():
        head = _lock_head()
        event.prev_hash = head.last_hash
        event.hash = digest(event.prev_hash, content(event))
        event.save()
        AuditChainHead.objects.filter(pk=HEAD).update(
            last_id=event.pk, last_hash=event.hash, length=F("length") + 1
        )
    return event


def _lock_head() -> AuditChainHead:
    """The chain head, locked until the transaction ends (created if missing, e.g. after a
    test flush)."""
    head = AuditChainHead.objects.select_for_update().filter(pk=HEAD).first()
    if head is not None:
        return head
    # the length and the last row in one statement, so one snapshot: another writer may commit
    # between two reads, and a head that counts its row but names the row before it is refused
    # by the trigger (migration 0007)
    trail = AuditEvent.objects.aggregate(length=Count("id"), last_id=Max("id"))
    last_id = trail["last_id"] or 0
    last_hash = (
        AuditEvent.objects.filter(pk=last_id).values_list("hash", flat=True).get()
        if last_id
        else GENESIS
    )
    try:
        with transaction.atomic():
            AuditChainHead.objects.create(
                pk=HEAD, last_id=last_id, last_hash=last_hash, length=trail["length"]
            )
    except IntegrityError:  # another transaction created it first
        pass
    return AuditChainHead.objects.select_for_update().get(pk=HEAD)


# --- verification -----------------------------------------------------------------------------


@dataclass
class Verdict:
    ok: bool
    checked: int
    problem: str = ""
    row_id: int | None = None

    def __str__(self) -> str:
        if self.ok:
            return f"The audit chain is intact: {self.checked} rows checked."
        return self.problem


def verify() -> Verdict:
    """Walk the chain in id order and name the first row that was altered, removed or moved."""
    rows = AuditEvent.objects.order_by("id")
    known = dict(rows.values_list("hash", "id").iterator(chunk_size=5000))
    expected, previous_id, checked = GENESIS, None, 0
    for row in rows.iterator(chunk_size=2000):
        after = f"after #{previous_id}" if previous_id else "at the start of the chain"
        if digest(row.prev_hash, content(row)) != row.hash:
            return Verdict(
                False,
                checked,
                f"Audit row #{row.pk} was altered: its content no longer matches its hash "
                f"({row.action} {row.object_type}:{row.object_id} by {row.actor_name}).",
                row.pk,
            )
        if row.prev_hash != expected:
            if row.prev_hash in known:
                points_to = known[row.prev_hash]
                return Verdict(
                    False,
                    checked,
                    f"Audit row #{row.pk} is out of order: it was written after row "
                    f"#{points_to}, but it comes {after}.",
                    row.pk,
                )
            return Verdict(
                False,
                checked,
                f"A row was removed (or its hash rewritten) before audit row #{row.pk}, "
                f"{after}: #{row.pk}'s predecessor is missing from the chain.",
                row.pk,
            )
        expected, previous_id, checked = row.hash, row.pk, checked + 1
    head = AuditChainHead.objects.filter(pk=HEAD).first()
    if head is not None and head.length and head.last_hash != expected:
        return Verdict(
            False,
            checked,
            f"The chain head says the last row is #{head.last_id}, but the table ends "
            f"{f'at #{previous_id}' if previous_id else 'empty'}: rows were removed from the end.",
            head.last_id,
        )
    return Verdict(True, checked)


def export(rows) -> Iterator[str]:
    """Each row as one line of JSON (for ``manage.py audit export``)."""
    for row in rows.iterator(chunk_size=2000):
        yield json.dumps(
            {
                "id": row.pk,
                "created_at": row.created_at.astimezone(UTC).isoformat(),
                "actor": row.actor_name,
                "actor_id": row.actor_id,
                "channel": row.channel,
                "source_address": row.source_address,
                "action": row.action,
                "object": {
                    "type": row.object_type,
                    "id": row.object_id,
                    "repr": row.object_repr,
                },
                "data": row.data,
                "before": row.before,
                "prev_hash": row.prev_hash,
                "hash": row.hash,
            },
            sort_keys=True,
            ensure_ascii=False,
        )
