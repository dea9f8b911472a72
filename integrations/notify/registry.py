"""The one list of notification transports: kind -> dotted path of its class, imported lazily.

Each class has ``label``, ``SECRETS`` (the names of the secrets it needs, stored encrypted or
referenced from the environment by the Django side, never shown back), ``CONFIG`` (its plain
settings, with a one-line description each), a classmethod ``validate(config, secrets) ->
[(path, message)]``, and is built as ``cls(config, secrets, **options)`` where ``options``
(test hooks: a Web API ``base_url``, a ``timeout``) come from the caller.
"""

from __future__ import annotations

from functools import cache
from importlib import import_module

from integrations.notify.base import TransportError

TRANSPORTS: dict[str, str] = {
    "slack": "integrations.notify.slack.transport.SlackTransport",
    "teams": "integrations.notify.teams.transport.TeamsTransport",
    "webhook": "integrations.notify.webhook.transport.WebhookTransport",
    "email": "integrations.notify.email.transport.EmailTransport",
}


def kind_choices() -> list[tuple[str, str]]:
    return [(kind, transport_class(kind).label) for kind in TRANSPORTS]


@cache
def transport_class(kind: str):
    path = TRANSPORTS.get(kind)
    if path is None:
        known = ", ".join(sorted(TRANSPORTS))
        raise TransportError(f"unknown channel kind {kind!r}: use one of {known}", permanent=True)
    module, _, name = path.rpartition(".")
    return getattr(import_module(module), name)


def validate(kind: str, config: dict, secrets: dict) -> list[tuple[str, str]]:
    if kind not in TRANSPORTS:
        known = ", ".join(sorted(TRANSPORTS))
        return [("kind", f"unknown channel kind {kind!r}: use one of {known}")]
    if not isinstance(config, dict):
        return [("config", "must be an object")]
    return list(transport_class(kind).validate(config, secrets))


def build(kind: str, config: dict, secrets: dict, **options):
    return transport_class(kind)(config, secrets, **options)
