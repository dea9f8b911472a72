"""SDK tokens and evaluation counts.

Tokens: ``swyf_<prefix>_<secret>``, one environment each; only a sha256 of the whole token is
stored, the prefix finds the row and the hash is compared in constant time. Unleash SDKs send
the token as the bare ``Authorization`` header; OFREP providers as ``Bearer`` or ``X-API-Key``:
all are accepted.

Counts: OFREP evaluations are added up in the process and written at most every few seconds (a
write per evaluation would cost more than the evaluation); Unleash SDKs send their own counts
to ``/api/client/metrics``. Both land in ``EvaluationCount`` per minute.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import string
import threading
import time
from collections import defaultdict
from datetime import datetime, timedelta

from django.db import DatabaseError, transaction
from django.db.models import F
from django.utils import timezone

from flags import governance
from flags.models import EvaluationCount, EvaluationTotal, Flag, FlagSetting, SdkToken
from releases import audit
from releases.errors import DomainError, NotFound
from releases.models import Environment

logger = logging.getLogger(__name__)

TAG = "swyf"
PREFIX_ALPHABET = string.ascii_lowercase + string.digits
FLUSH_EVERY_SECONDS = 5.0


class SdkTokenRefused(DomainError):
    code, status = "not_authenticated", 401


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(actor, environment, name: str) -> tuple[SdkToken, str]:
    """A new token for ``environment``: the row and the token itself (shown once)."""
    governance.require(actor, "sdktoken.create", environment)
    prefix = "".join(secrets.choice(PREFIX_ALPHABET) for _ in range(8))
    token = f"{TAG}_{prefix}_{secrets.token_urlsafe(32)}"
    with transaction.atomic():
        row = SdkToken.objects.create(
            name=name[:100],
            environment=environment,
            prefix=prefix,
            hashed=_hash(token),
            created_by=actor.name[:150],
        )
        audit.record(actor, "sdktoken.create", row, {"environment": environment.slug, "name": name})
    return row, token


def revoke_token(actor, prefix: str) -> SdkToken:
    row = SdkToken.objects.select_related("environment").filter(prefix=prefix).first()
    if row is None:
        raise NotFound(f"There is no SDK token {prefix!r}.")
    governance.require(actor, "sdktoken.revoke", row.environment)
    with transaction.atomic():
        if row.revoked_at is None:
            row.revoked_at = timezone.now()
            row.save(update_fields=["revoked_at"])
            audit.record(actor, "sdktoken.revoke", row)
    return row


def token_from(request) -> str:
    header = request.headers.get("Authorization", "").strip()
    if header.lower().startswith("bearer "):
        header = header[7:].strip()
    return header or request.headers.get("X-API-Key", "").strip()


_verified: dict[str, tuple[float, int]] = {}  # hash -> (checked at, environment id)
RECHECK_SECONDS = 2.0  # a revoked token is refused within this long


def verify(token: str) -> int:
    """The environment id the token serves; SdkTokenRefused if none."""
    if not token:
        raise SdkTokenRefused(
            "Send an SDK token: `Authorization: swyf_…` (create one with "
            "`manage.py flags token create`)."
        )
    digest = _hash(token)
    seen = _verified.get(digest)
    now = time.monotonic()
    if seen is not None and now - seen[0] < RECHECK_SECONDS:
        return seen[1]
    parts = token.split("_", 2)  # the secret itself may contain "_"
    row = (
        SdkToken.objects.filter(prefix=parts[1]).first()
        if len(parts) == 3 and parts[0] == TAG
        else None
    )
    if row is None or not hmac.compare_digest(row.hashed, digest):
        raise SdkTokenRefused("That SDK token is not valid.")
    if row.revoked_at is not None:
        _verified.pop(digest, None)
        raise SdkTokenRefused(f"The SDK token {row.prefix} was revoked.")
    if row.last_used_at is None or (timezone.now() - row.last_used_at).total_seconds() > 60:
        SdkToken.objects.filter(pk=row.pk).update(last_used_at=timezone.now())
    _verified[digest] = (now, row.environment_id)
    return row.environment_id


# --- evaluation counts ------------------------------------------------------------------------

_pending: dict[tuple[int, str], list] = defaultdict(lambda: [0, 0, defaultdict(int)])
_pending_lock = threading.Lock()
_last_flush = [time.monotonic()]


def count(environment_id: int, key: str, enabled: bool, variant: str | None) -> None:
    with _pending_lock:
        entry = _pending[(environment_id, key)]
        entry[0 if enabled else 1] += 1
        if variant and variant != "disabled":
            entry[2][variant] += 1


def flush_if_due(force: bool = False) -> None:
    if not force and time.monotonic() - _last_flush[0] < FLUSH_EVERY_SECONDS:
        return
    with _pending_lock:
        taken = dict(_pending)
        _pending.clear()
        _last_flush[0] = time.monotonic()
    by_env: dict[int, dict] = defaultdict(dict)
    for (env_id, key), (yes, no, variants) in taken.items():
        by_env[env_id][key] = {"yes": yes, "no": no, "variants": dict(variants)}
    for env_id, toggles in by_env.items():
        try:
            record(env_id, toggles, timezone.now())
        except DatabaseError:  # counts are worth less than the evaluation that is waiting
            logger.warning("dropped %d flags' evaluation counts", len(toggles), exc_info=True)


def _add(model, flag_id, environment_id, where: dict, yes: int, no: int, variants) -> None:
    """Add the counts to ``model``'s row for the flag and environment (and ``where``), made if
    missing; the row is locked, so concurrent flushes add up."""
    row, created = model.objects.select_for_update().get_or_create(
        flag_id=flag_id,
        environment_id=environment_id,
        **where,
        defaults={"yes": yes, "no": no, "variants": variants or {}},
    )
    if not created:
        merged = dict(row.variants)
        for name, n in (variants or {}).items():
            merged[name] = merged.get(name, 0) + int(n)
        model.objects.filter(pk=row.pk).update(yes=F("yes") + yes, no=F("no") + no, variants=merged)


# per-minute counts older than this are deleted (the page's chart shows the last 24 hours; the
# totals behind /metrics and each setting's last_evaluated_at, for the stale report, stay)
MINUTES_KEPT = timedelta(days=14)


def prune_counts(now: datetime | None = None) -> int:
    """Delete per-minute evaluation counts older than :data:`MINUTES_KEPT`; how many."""
    cutoff = (now or timezone.now()) - MINUTES_KEPT
    deleted, _ = EvaluationCount.objects.filter(minute__lt=cutoff).delete()
    return deleted


def record(environment_id: int, toggles: dict, when: datetime) -> None:
    """Add ``{key: {"yes", "no", "variants"}}`` to the minute of ``when`` (unknown keys are
    ignored: an SDK may know flags that were archived since)."""
    minute = when.replace(second=0, microsecond=0)
    if not Environment.objects.filter(pk=environment_id).exists():
        return  # removed since the counts were taken
    ids = dict(Flag.objects.filter(key__in=list(toggles)).values_list("key", "pk"))
    # rows are locked in one order (by key, then setting id): concurrent flushes from several
    # web processes queue behind each other instead of deadlocking
    with transaction.atomic():
        for key, stats in sorted(toggles.items()):
            if key not in ids:
                continue
            yes, no = int(stats.get("yes", 0)), int(stats.get("no", 0))
            for model, where in (
                (EvaluationCount, {"minute": minute}),
                (EvaluationTotal, {}),  # what /metrics reads, outliving pruned minutes
            ):
                _add(model, ids[key], environment_id, where, yes, no, stats.get("variants"))
        locked = FlagSetting.objects.select_for_update().filter(
            environment_id=environment_id, flag_id__in=list(ids.values())
        )
        pks = list(locked.order_by("pk").values_list("pk", flat=True))
        FlagSetting.objects.filter(pk__in=pks).update(last_evaluated_at=when)
