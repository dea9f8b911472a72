"""The bridge from a Target row to its provider (``integrations.registry``): plain values cross
into ``integrations``, nothing of Django does. The provider reads its own settings (the local
fleet's URL and token among them); nothing here knows one provider from another.
"""

from __future__ import annotations

from integrations import registry
from integrations.base import MetricsSource, ReleaseRef, Target
from releases.models import Release
from releases.models import Target as TargetRow


def integration_for(target: TargetRow) -> Target:
    return registry.build_target(target.provider, target.key, target.config or {})


def metrics_for(target: TargetRow) -> MetricsSource | None:
    return registry.build_metrics_source(target.provider, target.key)


def release_ref(release: Release, health: dict | None = None) -> ReleaseRef:
    return ReleaseRef(version=release.version, artifact=release.artifact or {}, health=health or {})
