"""The local provider's per-target config: ``{"router_port": 9101}`` (every key optional)."""

from __future__ import annotations

from typing import Any

KNOWN_KEYS = ("router_port",)


def validate_config(config: Any) -> list[tuple[str, str]]:
    """Every problem with ``config`` as ``(path, message)``; an empty list means it is fine."""
    if config is None:
        return []
    if not isinstance(config, dict):
        return [("", f"must be an object, got {type(config).__name__}")]
    errors: list[tuple[str, str]] = []
    for key in sorted(set(config) - set(KNOWN_KEYS), key=str):
        errors.append((str(key), f"unknown key {key!r} (known: {', '.join(KNOWN_KEYS)})"))
    port = config.get("router_port")
    if port is not None and (
        isinstance(port, bool) or not isinstance(port, int) or not 1024 <= port <= 65535
    ):
        errors.append(("router_port", f"must be an integer between 1024 and 65535, got {port!r}"))
    return errors
