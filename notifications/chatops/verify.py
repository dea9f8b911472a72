"""Is this request from Slack, and new? Slack's v0 signature over ``v0:timestamp:body`` with the
app's signing secret, within 5 minutes (``slack_sdk``'s own verifier), seen once."""

from __future__ import annotations

from django.conf import settings
from django.db import IntegrityError, transaction
from slack_sdk.signature import SignatureVerifier

from notifications.models import InboundNonce


class Refused(Exception):
    pass


def check(body: bytes, headers) -> None:
    """Raise Refused unless ``body`` carries a valid, fresh, unseen Slack signature."""
    secret = settings.SLACK_SIGNING_SECRET
    if not secret:
        raise Refused("chat-ops is not configured: set SLACK_SIGNING_SECRET")
    signature = headers.get("X-Slack-Signature", "")
    if not signature or not headers.get("X-Slack-Request-Timestamp"):
        raise Refused("the request is not signed")
    if not SignatureVerifier(secret).is_valid_request(body, dict(headers)):
        raise Refused("the signature is invalid or older than 5 minutes")
    try:
        with transaction.atomic():
            InboundNonce.objects.create(signature=signature[:80])
    except IntegrityError:
        raise Refused("the request was already received (a replay)") from None
