"""What the API's resource routers share: the error responses they declare, ``InvalidInput``,
timestamps, looking up a service or an environment by slug (404 naming it), applying a PATCH
(``changes``), a default strategy as stored, and "create, or 409 if someone else did"."""

from __future__ import annotations

import json
from contextlib import contextmanager
from datetime import UTC

from django.db import IntegrityError, transaction
from django.http import HttpResponse
from ninja.responses import NinjaJSONEncoder, codes_4xx

from releases import actions
from releases.api.schemas import (
    ErrorOut,
)
from releases.errors import Conflict, DomainError, NotFound
from releases.models import Environment, Service

ERRORS = {codes_4xx: ErrorOut}


def answer(data, status: int = 200) -> HttpResponse:
    """``data`` as ninja would render it, without validating it against the operation's
    response schema first: for the hot views whose ``data`` is a presenter's plain dict that
    already has the schema's shape (ninja's validation wraps every field of every item in its
    ``DjangoGetter``: ~2 ms of a list page, docs/serving.md). The schema stays declared, so the
    OpenAPI document is the same; tests/releases/api/test_answers.py checks the bodies are what
    the validation would have made of them."""
    return HttpResponse(
        json.dumps(data, cls=NinjaJSONEncoder),
        status=status,
        content_type="application/json; charset=utf-8",
    )


class InvalidInput(DomainError):
    """A well-formed body whose values are wrong, listed by path in ``details.errors``."""

    code, status = "invalid_request", 422


def iso(value):
    """A timestamp as the API writes it (ISO 8601, as stored), or None."""
    return value.isoformat() if value else None


def iso_utc(value):
    """A timestamp in UTC, ISO 8601 (freeze windows and roles, set in other time zones)."""
    return value.astimezone(UTC).isoformat() if value else None


@contextmanager
def created_or_conflict(message: str, **details):
    """Create a row inside the block; if another request created it first (the unique
    constraint's IntegrityError), answer 409 with ``message`` -- never a 500."""
    try:
        with transaction.atomic():
            yield
    except IntegrityError:
        raise Conflict(message, details=details) from None


def get_service(slug: str) -> Service:
    service = Service.objects.filter(slug=slug).first()
    if service is None:
        raise NotFound(f"There is no service {slug!r}.", details={"service": slug})
    return service


def get_environment(slug: str) -> Environment:
    environment = Environment.objects.filter(slug=slug).first()
    if environment is None:
        raise NotFound(f"There is no environment {slug!r}.", details={"environment": slug})
    return environment


def strategy_or_empty(raw: dict | None) -> dict:
    """A default strategy as stored: normalised, or {} for none (null or {} clears it)."""
    return actions.validate_strategy(raw) if raw else {}


def changes(obj, fields: dict, before: dict | None = None) -> dict:
    """Apply ``fields`` to ``obj``; return {field: new value} for those that changed (and put
    their old values in ``before``, for the audit trail)."""
    changed = {}
    for name, value in fields.items():
        if getattr(obj, name) != value:
            if before is not None:
                before[name] = getattr(obj, name)
            setattr(obj, name, value)
            changed[name] = value
    return changed
