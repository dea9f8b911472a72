"""Which integration runs a target: provider name -> dotted path, imported lazily."""

from __future__ import annotations

from importlib import import_module
from typing import Any

from integrations.base import IntegrationError, Target

TARGETS = {
    "local": "integrations.local.target.LocalTarget",
}
CONFIG_VALIDATORS = {
    "local": "integrations.local.config.validate_config",
}


def _load(path: str):
    module, _, name = path.rpartition(".")
    return getattr(import_module(module), name)


def validate_target_config(provider: str, config: dict) -> list[tuple[str, str]]:
    """Every problem with a target's config, as (path, message) pairs."""
    if provider not in TARGETS:
        known = ", ".join(sorted(TARGETS))
        return [("provider", f"unknown provider {provider!r}: use one of {known}")]
    if not isinstance(config, dict):
        return [("config", "must be an object")]
    return list(_load(CONFIG_VALIDATORS[provider])(config))


def build_target(provider: str, key: str, config: dict, **options: Any) -> Target:
    if provider not in TARGETS:
        raise IntegrationError(f"unknown provider {provider!r}", permanent=True)
    return _load(TARGETS[provider])(key, config, **options)
