"""The local provider's per-target config: ``{"router_port": 9101, "preview_port": 9102}``.

Every key is optional: without a port the agent picks a free one (``router_port`` is where user
traffic enters, ``preview_port`` where the routing's preview slot answers).
"""

from __future__ import annotations

from typing import Any

from integrations.local.validation import PORT_KEYS, port_errors

KNOWN_KEYS = PORT_KEYS


def validate_config(config: Any) -> list[tuple[str, str]]:
    """Every problem with ``config`` as ``(path, message)``; an empty list means it is fine."""
    if config is None:
        return []
    if not isinstance(config, dict):
        return [("", f"must be an object, got {type(config).__name__}")]
    errors: list[tuple[str, str]] = []
    for key in sorted(set(config) - set(KNOWN_KEYS), key=str):
        errors.append((str(key), f"unknown key {key!r} (known: {', '.join(KNOWN_KEYS)})"))
    return errors + port_errors(config)


def settings_options() -> dict[str, Any]:
    """The local provider's own settings: where the fleet agent listens and its token
    (``FLEET_URL``, ``FLEET_TOKEN``; see switchyard/settings.py)."""
    from django.conf import settings  # read when a target is built, never at import

    return {"fleet_url": settings.FLEET_URL, "token": settings.FLEET_TOKEN}
