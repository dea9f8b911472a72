"""Readers every strategy kind shares: replicas, the progress deadline and the health check.

They live apart from ``strategies.spec`` so the per-kind spec modules (``spec_bluegreen``,
``spec_canary``) can use them while ``spec`` imports those modules to fill ``KINDS``.
"""

from __future__ import annotations

from typing import Any

from strategies.fields import Fields, duration, url_path, whole

DEFAULT_HEALTH = {
    "path": "/health",
    "interval": 0.5,
    "healthy_threshold": 2,
    "unhealthy_threshold": 3,
}
DEFAULT_PROGRESS_DEADLINE = 600.0


def read_replicas(fields: Fields, key: str = "replicas") -> int | None:
    return fields.take(key, 1, whole(1))


def read_progress_deadline(fields: Fields) -> float | None:
    return fields.take("progress_deadline", DEFAULT_PROGRESS_DEADLINE, duration(positive=True))


def read_health(fields: Fields) -> dict[str, Any] | None:
    health = fields.nested("health")
    if health is None:
        return None
    out = {
        "path": health.take("path", DEFAULT_HEALTH["path"], url_path),
        "interval": health.take("interval", DEFAULT_HEALTH["interval"], duration(positive=True)),
        "healthy_threshold": health.take("healthy_threshold", 2, whole(1)),
        "unhealthy_threshold": health.take("unhealthy_threshold", 3, whole(1)),
    }
    health.finish()
    return out


def instances(count: int) -> str:
    """ "1 instance", "3 instances"."""
    return f"{count} instance{'' if count == 1 else 's'}"
