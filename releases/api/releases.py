"""API: releases — register one (through ``actions.create_release``: immutable, idempotent by
version), list a service's (newest first, paged), read one."""

from __future__ import annotations

from ninja import Query, Router, Status

from releases import actions
from releases.api.auth import actor_for, authorize
from releases.api.common import ERRORS, get_service
from releases.api.schemas import (
    ReleaseIn,
    ReleaseOut,
    ReleasePage,
)
from releases.errors import NotFound
from releases.live.presenters import release_dict
from releases.models import Release

router = Router()


# --- releases ---------------------------------------------------------------------------------


@router.post(
    "/services/{slug}/releases",
    response={200: ReleaseOut, 201: ReleaseOut, **ERRORS},
    tags=["releases"],
)
def create_release(request, slug: str, payload: ReleaseIn):
    """Register a build. 201 when new; the same version with the same body again is 200 (safe
    to retry); the same version with a different body is 409: releases are immutable."""
    service = get_service(slug)
    authorize(request, "release.create", service)
    release, created = actions.create_release(
        actor_for(request),
        service,
        version=payload.version,
        artifact=payload.artifact,
        commit=payload.commit,
        notes=payload.notes,
    )
    return Status(201 if created else 200, release_dict(release))


@router.get("/services/{slug}/releases", response={200: ReleasePage, **ERRORS}, tags=["releases"])
def list_releases(
    request,
    slug: str,
    limit: int = Query(50, ge=1, le=200),
    before: int | None = Query(None, ge=0, le=2**63 - 1, description="the previous page's next"),
):
    """Newest first, cursor-paginated: pass ``next`` back as ``before``."""
    service = get_service(slug)
    authorize(request, "release.view", service)
    releases = Release.objects.select_related("service", "created_by").filter(service=service)
    if before is not None:
        releases = releases.filter(pk__lt=before)
    rows = list(releases.order_by("-id")[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    return {
        "items": [release_dict(r) for r in rows],
        "next": rows[-1].pk if more else None,
    }


@router.get(
    "/services/{slug}/releases/{version}",
    response={200: ReleaseOut, **ERRORS},
    tags=["releases"],
)
def get_release(request, slug: str, version: str):
    service = get_service(slug)
    release = (
        Release.objects.select_related("service", "created_by")
        .filter(service=service, version=version)
        .first()
    )
    if release is None:
        raise NotFound(
            f"{service.slug} has no release {version!r}.",
            details={"service": service.slug, "version": version},
        )
    authorize(request, "release.view", release)
    return release_dict(release)
