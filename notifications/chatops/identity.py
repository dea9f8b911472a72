"""Who a Slack user is here: the explicit link (``ChatUser``), or -- once, then linked -- the
Switchyard user with the email Slack says that user verified (``users.info`` with the chat-ops
bot token ``SLACK_BOT_TOKEN``; no transaction is open during that call)."""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError
from slack_sdk import WebClient
from slack_sdk.errors import SlackClientError

from notifications.models import ChatUser

logger = logging.getLogger(__name__)


def user_for(team_id: str, slack_user_id: str):
    """The linked, active Switchyard user, or None."""
    link = (
        ChatUser.objects.select_related("user")
        .filter(team_id=team_id, slack_user_id=slack_user_id, user__is_active=True)
        .first()
    )
    if link is not None:
        return link.user
    email = verified_email(slack_user_id)
    if not email:
        return None
    matches = list(get_user_model().objects.filter(email__iexact=email, is_active=True)[:2])
    if len(matches) != 1:  # none, or ambiguous: an explicit link is needed
        return None
    try:
        ChatUser.objects.create(
            team_id=team_id, slack_user_id=slack_user_id, user=matches[0], how="verified_email"
        )
    except IntegrityError:
        pass  # linked meanwhile by another request
    return matches[0]


def verified_email(slack_user_id: str) -> str:
    token = settings.SLACK_BOT_TOKEN
    if not token:
        return ""
    client = WebClient(
        token=token,
        base_url=settings.SLACK_API_URL,
        timeout=int(max(1, settings.NOTIFY_TIMEOUT)),
        retry_handlers=[],
    )
    try:
        profile = client.users_info(user=slack_user_id)["user"]
    except (SlackClientError, OSError, KeyError):
        logger.warning("users.info failed for %s", slack_user_id, exc_info=True)
        return ""
    if not profile.get("is_email_confirmed"):
        return ""
    return (profile.get("profile") or {}).get("email", "")
