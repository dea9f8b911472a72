"""POST ``{"type", "timestamp", "data"}`` (the Standard Webhooks payload shape) signed with the
channel's ``whsec_…`` secret. The ``webhook-id`` is the notice's id: the same event retried keeps
it, so receivers can drop duplicates."""

from __future__ import annotations

import base64
import json
import secrets as random
from datetime import UTC, datetime

from standardwebhooks.webhooks import Webhook

from integrations.notify.base import (
    DEFAULT_TIMEOUT,
    Notice,
    TransportError,
    check_url,
    post_json,
)


def new_secret() -> str:
    """A fresh signing secret in the spec's format (``whsec_`` + base64 of 32 random bytes)."""
    return "whsec_" + base64.b64encode(random.token_bytes(32)).decode()


def _well_formed(secret: str) -> bool:
    """``whsec_`` + strict base64 of at least 24 bytes (the library itself decodes leniently)."""
    body = secret.removeprefix("whsec_")
    try:
        return secret.startswith("whsec_") and len(base64.b64decode(body, validate=True)) >= 24
    except ValueError:
        return False


def payload(notice: Notice) -> dict:
    return {
        "type": f"deployment.{notice.trigger}",
        "timestamp": notice.at or datetime.now(UTC).isoformat(),
        "data": {
            "title": notice.title,
            "text": notice.text,
            "url": notice.url,
            "deployment": notice.deployment or None,
            "event": notice.event,
        },
    }


class WebhookTransport:
    label = "Webhook (Standard Webhooks)"
    SECRETS = ("signing_secret",)
    CONFIG = {"url": "where to POST the signed JSON"}

    @classmethod
    def validate(cls, config: dict, secrets: dict) -> list[tuple[str, str]]:
        problems = [
            (f"config.{k}", "is not a known setting") for k in config if k not in cls.CONFIG
        ]
        problems += check_url(config.get("url"), "config.url")
        secret = secrets.get("signing_secret")
        if not secret:
            problems.append(("secrets.signing_secret", "is required (whsec_… base64)"))
        elif isinstance(secret, str) and not _well_formed(secret):
            problems.append(("secrets.signing_secret", "must be whsec_ followed by base64"))
        return problems

    def __init__(self, config: dict, secrets: dict, *, timeout: float = DEFAULT_TIMEOUT):
        self.url = config.get("url", "")
        self.secret = secrets.get("signing_secret") or ""
        self.timeout = timeout

    def send(self, notice: Notice, *, ref: dict | None = None, reply: bool = False) -> dict | None:
        try:
            signer = Webhook(self.secret)
        except Exception as exc:  # noqa: BLE001 -- a malformed secret cannot get better
            raise TransportError(f"the signing secret is invalid: {exc}", permanent=True) from None
        body = json.dumps(payload(notice), separators=(",", ":"))
        now = datetime.now(UTC)
        headers = {
            "webhook-id": notice.id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": signer.sign(msg_id=notice.id, timestamp=now, data=body),
        }
        post_json(
            self.url, body.encode(), headers=headers, timeout=self.timeout, what="the webhook"
        )
        return None
