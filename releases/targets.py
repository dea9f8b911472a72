"""Build the integration object for a Target row (plain values cross into ``integrations``)."""

from __future__ import annotations

from django.conf import settings

from integrations.base import ReleaseRef, Target
from integrations.registry import build_target
from releases.models import Provider, Release
from releases.models import Target as TargetRow


def integration_for(target: TargetRow) -> Target:
    options = {}
    if target.provider == Provider.LOCAL:
        options = {"fleet_url": settings.FLEET_URL, "token": settings.FLEET_TOKEN}
    return build_target(target.provider, target.key, target.config or {}, **options)


def release_ref(release: Release, health: dict | None = None) -> ReleaseRef:
    return ReleaseRef(version=release.version, artifact=release.artifact or {}, health=health or {})
