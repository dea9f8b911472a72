"""A channel's secrets: encrypted at rest with Fernet (``cryptography``), or a reference to an
environment variable (``{"env": "SLACK_BOT_TOKEN"}``) read only when sending. Never shown back:
the API and the page show which secrets are set and from where, not their values.

The key is ``NOTIFY_SECRETS_KEY`` (a Fernet key; several, comma-separated, for rotation: the first
encrypts) or, when unset, one derived from ``SECRET_KEY``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings


class SecretError(Exception):
    pass


def _fernet() -> MultiFernet:
    keys = [k.strip() for k in settings.NOTIFY_SECRETS_KEY.split(",") if k.strip()]
    derived = hashlib.sha256(f"notifications:{settings.SECRET_KEY}".encode()).digest()
    keys.append(base64.urlsafe_b64encode(derived).decode())
    return MultiFernet([Fernet(k) for k in keys])


def seal(values: dict) -> str:
    """Encrypt ``{name: value | {"env": NAME}}``; empty values are dropped."""
    clean = {k: v for k, v in values.items() if v not in (None, "", {})}
    if not clean:
        return ""
    return _fernet().encrypt(json.dumps(clean).encode()).decode()


def stored(token: str) -> dict:
    """What was sealed (env references unresolved)."""
    if not token:
        return {}
    try:
        return json.loads(_fernet().decrypt(token.encode()))
    except (InvalidToken, ValueError):
        raise SecretError(
            "the channel's secrets cannot be decrypted (SECRET_KEY or NOTIFY_SECRETS_KEY "
            "changed?): set them again"
        ) from None


def resolve(token: str) -> dict:
    """The secrets with environment references read now (a missing variable is an error)."""
    out = {}
    for name, value in stored(token).items():
        if isinstance(value, dict) and "env" in value:
            env_value = os.environ.get(str(value["env"]), "")
            if not env_value:
                raise SecretError(f"secret {name} names ${value['env']}, which is not set")
            out[name] = env_value
        else:
            out[name] = value
    return out


def describe(token: str) -> dict:
    """What the API shows: ``{name: "stored" | "env:NAME"}``."""
    try:
        values = stored(token)
    except SecretError:
        return {"error": "cannot be decrypted"}
    return {
        name: f"env:{value['env']}" if isinstance(value, dict) else "stored"
        for name, value in values.items()
    }


def for_validation(values: dict) -> dict:
    """Secrets as a validator sees them: env references count as present, unread."""
    return {k: v for k, v in values.items() if v not in (None, "", {})}
