"""Secret arguments of analysis templates (``{"name": "token", "secret": {"name": "api", "key":
"token"}}``, Argo's ``valueFrom.secretKeyRef``): read from the secret store named in the
settings when a measurement is taken, handed to the metric provider, and never written to the
database (the run's ``args`` and ``spec`` hold only where the secret is).

``ANALYSIS_SECRET_STORE``:

- ``"env"`` (the default): the environment variable ``SWITCHYARD_SECRET_<NAME>_<KEY>``, upper
  case, every character other than a letter or digit as ``_`` (``api`` / ``token`` ->
  ``SWITCHYARD_SECRET_API_TOKEN``);
- a dotted path to a callable ``(name, key) -> str`` (Vault, a cloud secret manager...), which
  raises ``KeyError`` when it has no such secret.
"""

from __future__ import annotations

import os
import re
from importlib import import_module

from django.conf import settings

from integrations.base import IntegrationError

PREFIX = "SWITCHYARD_SECRET_"


def env_name(name: str, key: str) -> str:
    return PREFIX + re.sub(r"[^A-Za-z0-9]", "_", f"{name}_{key}").upper()


def read(name: str, key: str) -> str:
    """The secret ``key`` of ``name``; a permanent IntegrationError saying where it was looked
    for (never its value) when there is none."""
    store = getattr(settings, "ANALYSIS_SECRET_STORE", "env") or "env"
    if store == "env":
        value = os.environ.get(env_name(name, key))
        if value is None:
            raise IntegrationError(
                f"the secret {name}/{key} is not set: set the environment variable "
                f"{env_name(name, key)}",
                permanent=True,
            )
        return value
    module, _, attr = store.rpartition(".")
    try:
        return str(getattr(import_module(module), attr)(name, key))
    except KeyError:
        raise IntegrationError(
            f"the secret store {store} has no secret {name}/{key}", permanent=True
        ) from None


def values(template: dict) -> dict[str, str]:
    """Every secret argument of the (normalised) template, read now: name -> value."""
    return {
        arg["name"]: read(arg["secret"]["name"], arg["secret"]["key"])
        for arg in template.get("args") or []
        if arg.get("secret")
    }
