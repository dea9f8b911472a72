"""Registering a release: immutable, idempotent by version (the same version with the same
artifact answers the existing release; a different artifact is a conflict)."""

from __future__ import annotations

from django.db import IntegrityError, transaction

from releases import audit
from releases.actors import Actor
from releases.errors import (
    Conflict,
    InvalidRequest,
)
from releases.governance import policy
from releases.models import (
    Release,
    Service,
)

# --- releases ---------------------------------------------------------------------------------


def create_release(
    actor: Actor,
    service: Service,
    *,
    version: str,
    artifact: dict | None = None,
    commit: str = "",
    notes: str = "",
) -> tuple[Release, bool]:
    """Register a build. The same version twice with the same body is a no-op (returns created
    False); with a different body it is a conflict: releases are immutable."""
    policy.require(actor, "release.create", service)
    version = (version or "").strip()
    if not version:
        raise InvalidRequest("A release needs a version.", details={"field": "version"})
    artifact = artifact or {}
    existing = Release.objects.filter(service=service, version=version).first()
    if existing is not None:
        if (existing.artifact, existing.commit, existing.notes) == (artifact, commit, notes):
            return existing, False
        raise Conflict(
            f"Release {version} of {service.slug} already exists with a different body; "
            "releases are immutable, so publish a new version.",
            details={"version": version},
        )
    try:
        with transaction.atomic():
            release = Release.objects.create(
                service=service,
                version=version,
                artifact=artifact,
                commit=commit,
                notes=notes,
                created_by=actor.user,
                created_via=actor.channel,
            )
            audit.record(actor, "release.create", release, {"version": version, "commit": commit})
    except IntegrityError:  # a concurrent create of the same version won the race
        return create_release(
            actor, service, version=version, artifact=artifact, commit=commit, notes=notes
        )
    return release, True
