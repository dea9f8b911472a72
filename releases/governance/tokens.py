"""API tokens: ``swy_<prefix>_<secret>``, of which only a sha256 of the whole token is stored.

The prefix (8 characters, shown in lists and logs) finds the row; the hash of the presented token
is compared with the stored one in constant time. Revoked and expired tokens are refused with a
message that says so. Last use is recorded at most once a minute per token, so a busy CI job does
not write a row on every request.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
from datetime import datetime, timedelta

from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from releases import audit
from releases.actors import Actor
from releases.errors import DomainError, InvalidRequest, NotFound
from releases.models import ApiToken, Environment, Service

TOKEN_TAG = "swy"
PREFIX_LENGTH = 8
SECRET_BYTES = 32  # token_urlsafe(32) gives 43 characters
PREFIX_ALPHABET = string.ascii_lowercase + string.digits
LAST_USED_EVERY = timedelta(minutes=1)
MAX_TOKEN_LENGTH = 200

# what a token may be limited to; a token without scopes may do whatever its user may do (its
# user's roles always apply: a scope never grants more). Every scope includes reading.
SCOPES = {
    "read": "see services, environments, releases and deployments",
    "write": "also create and change them: releases, deployments, operator commands, targets "
    "(not approvals nor freeze overrides: those are scopes of their own)",
    "release.create": "register releases",
    "deployment.create": "start deployments (and retry them)",
    "deployment.operate": "promote, pause, resume, abort and roll back deployments",
    "deployment.approve": "approve and reject deployments",
    "deployment.override_freeze": "override a freeze window (with a written reason)",
    "config": "configure services, environments, targets, policies, freezes and roles",
}
# the actions (``releases.governance.policy``) each narrow scope allows
SCOPE_ACTIONS = {
    "release.create": ("release.create",),
    "deployment.create": ("deployment.create", "deployment.retry"),
    "deployment.operate": (
        "deployment.promote",
        "deployment.pause",
        "deployment.resume",
        "deployment.abort",
        "deployment.rollback",
        "deployment.end_window",
    ),
    "deployment.approve": ("deployment.approve", "deployment.reject"),
    "deployment.override_freeze": ("deployment.override_freeze",),
}
# actions that "write" does not grant: a token may do them only when given their own scope
# (or no scopes at all), so a CI token never approves or overrides a freeze by accident
OWN_SCOPE_ACTIONS = ("deployment.approve", "deployment.reject", "deployment.override_freeze")
# the scopes a CI job typically needs (``token create --ci``)
CI_SCOPES = ("release.create", "deployment.create", "deployment.operate")


def scope_for(action: str) -> str:
    """The narrowest scope that allows ``action``."""
    if action.endswith(".view"):
        return "read"
    for scope, actions in SCOPE_ACTIONS.items():
        if action in actions:
            return scope
    return "config"


class TokenRefused(DomainError):
    """The presented token does not authenticate anyone (the API answers 401)."""

    code, status = "not_authenticated", 401


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def display(token: ApiToken) -> str:
    """How a token is shown once created: its name and prefix, never the secret."""
    return f"{token.name} ({TOKEN_TAG}_{token.prefix}_…)"


def parse(token: str) -> str | None:
    """The prefix of a well-formed token, else None."""
    if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH:
        return None
    head = f"{TOKEN_TAG}_"
    if not token.startswith(head):
        return None
    rest = token[len(head) :]
    prefix, sep, secret = (
        rest[:PREFIX_LENGTH],
        rest[PREFIX_LENGTH : PREFIX_LENGTH + 1],
        rest[PREFIX_LENGTH + 1 :],
    )
    if sep != "_" or len(secret) < 32:
        return None
    if len(prefix) != PREFIX_LENGTH or any(c not in PREFIX_ALPHABET for c in prefix):
        return None
    return prefix


def check_scopes(scopes) -> list[str]:
    scopes = sorted(set(scopes or ()))
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown:
        known = ", ".join(sorted(SCOPES))
        raise InvalidRequest(
            f"Unknown scope {unknown[0]!r}: use one of {known} (or none for full access).",
            details={"scopes": unknown},
        )
    return scopes


def check_places(environments, services) -> tuple[list[str], list[str]]:
    """The environment and service slugs a token is limited to; each must exist."""
    found = []
    for model, slugs, what in (
        (Environment, environments, "environment"),
        (Service, services, "service"),
    ):
        slugs = sorted({s.strip() for s in slugs or () if s and s.strip()})
        known = set(model.objects.filter(slug__in=slugs).values_list("slug", flat=True))
        missing = [s for s in slugs if s not in known]
        if missing:
            raise InvalidRequest(
                f"There is no {what} {missing[0]!r} to limit the token to.",
                details={f"{what}s": missing},
            )
        found.append(slugs)
    return found[0], found[1]


def create(
    user,
    name: str,
    *,
    scopes=(),
    expires_at: datetime | None = None,
    actor: Actor | None = None,
    environments=(),
    services=(),
) -> tuple[ApiToken, str]:
    """Create a token for ``user``; returns the row and the token, which is never shown again.
    ``scopes`` limit what it may do, ``environments`` and ``services`` (slugs) where."""
    name = (name or "").strip()
    if not name:
        raise InvalidRequest("A token needs a name (what uses it, e.g. 'ci').")
    if len(name) > ApiToken._meta.get_field("name").max_length:
        raise InvalidRequest("The token's name is too long (at most 100 characters).")
    scopes = check_scopes(scopes)
    environments, services = check_places(environments, services)
    actor = actor or Actor.system(via="tokens")
    for _ in range(5):  # a prefix collision is astronomically rare; try again if it happens
        prefix = "".join(secrets.choice(PREFIX_ALPHABET) for _ in range(PREFIX_LENGTH))
        token = f"{TOKEN_TAG}_{prefix}_{secrets.token_urlsafe(SECRET_BYTES)}"
        try:
            with transaction.atomic():
                row = ApiToken.objects.create(
                    user=user,
                    name=name,
                    prefix=prefix,
                    hashed=hash_token(token),
                    scopes=scopes,
                    environments=environments,
                    services=services,
                    expires_at=expires_at,
                )
                audit.record(
                    actor,
                    "token.create",
                    row,
                    {
                        "name": name,
                        "prefix": prefix,
                        "user": user.get_username(),
                        "scopes": scopes,
                        "environments": environments,
                        "services": services,
                        "expires_at": expires_at.isoformat() if expires_at else None,
                    },
                )
        except IntegrityError:
            continue
        return row, token
    raise RuntimeError("could not find a free token prefix")  # pragma: no cover


create_token = create  # the name the e2e tests use


def verify(token: str, *, address: str | None = None) -> ApiToken:
    """The live token ``token`` names, or TokenRefused saying why not."""
    prefix = parse(token)
    if prefix is None:
        raise TokenRefused(
            "The API token is malformed: tokens look like swy_<prefix>_<secret>; "
            "create one with `manage.py token create`."
        )
    row = _lookup(prefix)
    presented = hash_token(token)
    stored = row.hashed if row is not None else hash_token("swy_missing")
    if not hmac.compare_digest(presented, stored) or row is None:
        raise TokenRefused("The API token is not valid: check that it was copied whole.")
    now = timezone.now()
    if row.revoked_at is not None:
        raise TokenRefused(
            f"The API token {display(row)} was revoked on {row.revoked_at:%Y-%m-%d %H:%M} UTC; "
            "create a new one.",
            details={"prefix": row.prefix, "revoked_at": row.revoked_at.isoformat()},
        )
    if row.expires_at is not None and row.expires_at <= now:
        raise TokenRefused(
            f"The API token {display(row)} expired on {row.expires_at:%Y-%m-%d %H:%M} UTC; "
            "create a new one.",
            details={"prefix": row.prefix, "expired_at": row.expires_at.isoformat()},
        )
    if not row.user.is_active:
        raise TokenRefused(f"The API token {display(row)} belongs to a deactivated user.")
    _touch(row, now, address)
    return row


_LOOKUP_SQL: dict[str, str] = {}


def _lookup(prefix: str) -> ApiToken | None:
    """``ApiToken.objects.select_related("user").filter(prefix=prefix).first()``, with its SQL
    compiled once per process: compiling it on every API request was ~0.5 ms of a request's
    ~3 ms of CPU (docs/serving.md). The row is read on every request all the same, so a revoked
    or expired token, or a deactivated user, is refused at once."""
    if connection.vendor != "postgresql":
        return ApiToken.objects.select_related("user").filter(prefix=prefix).first()
    sql = _LOOKUP_SQL.get(connection.alias)
    if sql is None:
        mark = "\x01prefix"
        rows = ApiToken.objects.using(connection.alias).select_related("user").filter(prefix=mark)
        sql, params = rows.order_by()[:1].query.sql_with_params()  # the prefix is unique
        if params != (mark,):  # pragma: no cover - the ORM changed its SQL
            raise RuntimeError(f"unexpected token lookup SQL: {sql}")
        sql = _LOOKUP_SQL[connection.alias] = sql
    with connection.cursor() as cursor:
        cursor.execute(sql, [prefix])
        values = cursor.fetchone()
    if values is None:
        return None
    token_fields = ApiToken._meta.concrete_fields
    user_model = ApiToken._meta.get_field("user").related_model
    n = len(token_fields)
    row = _from_db(ApiToken, token_fields, values[:n])
    row.user = _from_db(user_model, user_model._meta.concrete_fields, values[n:])
    return row


def _from_db(model, fields, values):
    """An instance as the ORM builds it from a row (``Model.from_db``, the fields' converters)."""
    if len(values) != len(fields):  # pragma: no cover - the ORM changed its SQL
        raise RuntimeError(f"{model.__name__}: {len(values)} columns for {len(fields)} fields")
    converted = [
        f.from_db_value(v, None, connection) if hasattr(f, "from_db_value") else v
        for f, v in zip(fields, values, strict=True)
    ]
    return model.from_db(connection.alias, [f.attname for f in fields], converted)


def _touch(row: ApiToken, now: datetime, address: str | None) -> None:
    """Record the use, at most once per LAST_USED_EVERY (a conditional update, no lock)."""
    stale = now - LAST_USED_EVERY
    if row.last_used_at is not None and row.last_used_at > stale:
        return
    ApiToken.objects.filter(pk=row.pk).filter(
        Q(last_used_at__isnull=True) | Q(last_used_at__lte=stale)
    ).update(last_used_at=now, last_used_from=address)
    row.last_used_at, row.last_used_from = now, address


def find(prefix: str) -> ApiToken:
    """The token with ``prefix`` (also accepts ``swy_<prefix>_…`` or the whole token)."""
    prefix = (prefix or "").strip()
    if prefix.startswith(f"{TOKEN_TAG}_"):
        prefix = prefix[len(TOKEN_TAG) + 1 :][:PREFIX_LENGTH]
    row = ApiToken.objects.select_related("user").filter(prefix=prefix).first()
    if row is None:
        raise NotFound(f"No API token has the prefix {prefix!r}.")
    return row


def revoke(prefix: str, *, actor: Actor | None = None) -> ApiToken:
    """Revoke the token with ``prefix``. Revoking a revoked token changes nothing."""
    row = find(prefix)
    if row.revoked_at is None:
        now = timezone.now()
        with transaction.atomic():
            ApiToken.objects.filter(pk=row.pk, revoked_at__isnull=True).update(revoked_at=now)
            row.revoked_at = now
            audit.record(
                actor or Actor.system(via="tokens"),
                "token.revoke",
                row,
                {"name": row.name, "prefix": row.prefix},
            )
    return row


def status(row: ApiToken, now: datetime | None = None) -> str:
    now = now or timezone.now()
    if row.revoked_at is not None:
        return "revoked"
    if row.expires_at is not None and row.expires_at <= now:
        return "expired"
    return "active"
