"""Signed checkpoints: the audit chain anchored outside the database.

The hash chain (``releases.audit.chain``) shows an edit, a removal or a reordering -- but someone
who can switch the database's triggers off can also re-hash every row, or empty the table and
reset the head, and the chain alone would call that intact. A checkpoint is the chain head at a
moment (``length``, ``last_id``, ``last_hash``), signed with HMAC-SHA256 under a key that lives
only in the environment (``SWITCHYARD_AUDIT_KEY``, or ``_FILE``), and written somewhere the
database cannot reach: an append-only file or an S3 bucket (``SWITCHYARD_AUDIT_CHECKPOINTS`` =
a path, ``file:///path`` or ``s3://bucket/prefix/``). Celery beat exports one every
``SWITCHYARD_AUDIT_CHECKPOINT_SECONDS`` (default 3600) while a destination is set.

:func:`check` (``manage.py audit verify``) reads them all back: each must carry a valid
signature (else it is forged, or signed with another key), and the row each names must still be
in the table with the hash it signed, and the chain no shorter.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlparse

from django.conf import settings
from django.utils import timezone

from releases.models import AuditChainHead, AuditEvent

TASK = "releases.tasks.audit_checkpoint"
VERSION = 1
SIGNED = ("v", "length", "last_id", "last_hash", "created_at", "key_id")
MIN_KEY_LENGTH = 32
S3_TIMEOUTS = {"connect_timeout": 5, "read_timeout": 10}


class CheckpointError(Exception):
    """A checkpoint could not be made, written or read (the message says what to fix)."""


def _key() -> bytes:
    key = getattr(settings, "AUDIT_CHECKPOINT_KEY", "")
    if not key:
        raise CheckpointError(
            "Set SWITCHYARD_AUDIT_KEY (or SWITCHYARD_AUDIT_KEY_FILE) to a long random secret: "
            "checkpoints are signed with it, and it is never stored in the database."
        )
    return key.encode()


def key_id(key: bytes) -> str:
    """Which key signed a checkpoint, without giving the key away."""
    return hashlib.sha256(b"switchyard-audit-key-id\n" + key).hexdigest()[:12]


def signature(fields: dict, key: bytes) -> str:
    payload = json.dumps({k: fields.get(k) for k in SIGNED}, sort_keys=True, separators=(",", ":"))
    return hmac.new(key, payload.encode(), hashlib.sha256).hexdigest()


def make(now: datetime | None = None) -> dict:
    """The committed chain head, signed."""
    key = _key()
    head = AuditChainHead.objects.filter(pk=1).first()
    fields = {
        "v": VERSION,
        "length": head.length if head else 0,
        "last_id": head.last_id if head else 0,
        "last_hash": head.last_hash if head else "",
        "created_at": (now or timezone.now()).astimezone(UTC).isoformat(),
        "key_id": key_id(key),
    }
    return {**fields, "signature": signature(fields, key)}


# --- where checkpoints are kept ---------------------------------------------------------------


class FileStore:
    """One JSON line per checkpoint, appended (make the file append-only: ``chattr +a``)."""

    def __init__(self, path: str):
        self.path = Path(path)
        self.where = str(self.path)

    def write(self, checkpoint: dict) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as out:
            out.write(json.dumps(checkpoint, sort_keys=True) + "\n")

    def read(self) -> list[dict]:
        if not self.path.exists():
            return []
        lines = self.path.read_text(encoding="utf-8").splitlines()
        return [_parse(line, f"{self.where} line {n}") for n, line in enumerate(lines, 1) if line]


class S3Store:
    """One object per checkpoint under ``prefix`` (turn on S3 Object Lock or a bucket policy
    that denies DeleteObject to the app, so the app's own credentials cannot remove them)."""

    def __init__(self, bucket: str, prefix: str):
        import boto3
        from botocore.config import Config

        self.bucket, self.prefix = bucket, prefix
        self.where = f"s3://{bucket}/{prefix}"
        endpoint = getattr(settings, "AUDIT_S3_ENDPOINT_URL", "") or None
        self.client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            config=Config(**S3_TIMEOUTS, retries={"max_attempts": 2, "mode": "standard"}),
        )

    def write(self, checkpoint: dict) -> None:
        stamp = checkpoint["created_at"].replace(":", "").replace("+0000", "Z")
        name = f"{self.prefix}checkpoint-{stamp}-{checkpoint['length']:012d}.json"
        body = json.dumps(checkpoint, sort_keys=True).encode()
        self._call(lambda: self.client.put_object(Bucket=self.bucket, Key=name, Body=body))

    def read(self) -> list[dict]:
        def read_all():
            found = []
            pages = self.client.get_paginator("list_objects_v2")
            for page in pages.paginate(Bucket=self.bucket, Prefix=self.prefix):
                for item in page.get("Contents", []):
                    body = self.client.get_object(Bucket=self.bucket, Key=item["Key"])["Body"]
                    found.append(_parse(body.read().decode(), f"s3://{self.bucket}/{item['Key']}"))
            return found

        return self._call(read_all)

    def _call(self, fn):
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return fn()
        except (BotoCoreError, ClientError) as exc:
            raise CheckpointError(
                f"Could not reach the checkpoints at {self.where}: {exc}"
            ) from exc


def _parse(text: str, where: str) -> dict:
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        return {"unreadable": where}
    return {**value, "where": where}


def store_for(destination: str):
    if destination.startswith("s3://"):
        url = urlparse(destination)
        if not url.netloc:
            raise CheckpointError(f"{destination!r} names no bucket: use s3://bucket/prefix/")
        return S3Store(url.netloc, url.path.lstrip("/"))
    if destination.startswith("file://"):
        return FileStore(urlparse(destination).path)
    if "://" in destination:
        raise CheckpointError(f"{destination!r}: checkpoints go to a path, file://… or s3://…")
    return FileStore(destination)


def destination(given: str | None = None) -> str:
    return given or getattr(settings, "AUDIT_CHECKPOINTS", "")


def export(to: str | None = None) -> dict:
    """Sign the chain head and write it to ``to`` (default: SWITCHYARD_AUDIT_CHECKPOINTS)."""
    where = destination(to)
    if not where:
        raise CheckpointError("Set SWITCHYARD_AUDIT_CHECKPOINTS (a path or s3://bucket/prefix/).")
    checkpoint = make()
    store_for(where).write(checkpoint)
    return checkpoint


# --- checking ---------------------------------------------------------------------------------


@dataclass
class Finding:
    ok: bool
    checked: int = 0
    problem: str = ""


def check(found: list[dict]) -> Finding:
    """Whether the table still holds what every checkpoint in ``found`` signed."""
    key = _key()
    head = AuditChainHead.objects.filter(pk=1).first()
    length = head.length if head else 0
    for n, cp in enumerate(sorted(found, key=lambda c: str(c.get("created_at"))), 1):
        where = cp.get("where", f"checkpoint {n}")
        if "unreadable" in cp:
            return Finding(False, n - 1, f"The checkpoint at {cp['unreadable']} is unreadable.")
        given = cp.get("signature")
        if not isinstance(given, str) or not hmac.compare_digest(given, signature(cp, key)):
            which = "another key" if cp.get("key_id") != key_id(key) else "this key"
            return Finding(
                False,
                n - 1,
                f"The checkpoint at {where} ({cp.get('created_at')}) is forged: its signature "
                f"does not match its content under {which} (key id {cp.get('key_id')}).",
            )
        if not cp.get("length"):
            continue
        row = AuditEvent.objects.filter(pk=cp.get("last_id")).values_list("hash", flat=True)
        stored = row.first()
        if stored != cp.get("last_hash"):
            what = "is missing" if stored is None else "has a different hash"
            return Finding(
                False,
                n - 1,
                f"Audit row #{cp.get('last_id')}, signed by the checkpoint of "
                f"{cp.get('created_at')} at {where}, {what}: the trail was wiped or rewritten "
                "behind the database's triggers.",
            )
        if length < cp["length"]:
            return Finding(
                False,
                n - 1,
                f"The chain holds {length} rows but the checkpoint of {cp.get('created_at')} at "
                f"{where} signed {cp['length']}: rows were removed.",
            )
    return Finding(True, len(found))
