"""Deliver a notice to Slack with ``slack_sdk``: a bot token (``chat.postMessage`` once per
deployment, then ``chat.update`` in place, thread replies with ``thread_ts``), or an incoming
webhook (one message per notice: webhooks cannot edit what they posted)."""

from __future__ import annotations

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.webhook import WebhookClient

from integrations.notify.base import (
    DEFAULT_TIMEOUT,
    Notice,
    TransportError,
    check_url,
    classify_status,
    retry_after,
)
from integrations.notify.slack import blocks

# Slack Web API errors that no retry can fix: the channel is disabled with the reason
PERMANENT_ERRORS = {
    "invalid_auth": "the bot token is invalid",
    "not_authed": "no bot token was sent",
    "token_revoked": "the bot token was revoked",
    "token_expired": "the bot token expired",
    "account_inactive": "the bot's account is deactivated",
    "channel_not_found": "the channel does not exist (or the bot cannot see it)",
    "not_in_channel": "the bot is not a member of the channel: invite it",
    "is_archived": "the channel is archived",
    "missing_scope": "the bot token lacks the chat:write scope",
    "restricted_action": "the workspace does not let the bot post there",
    "invalid_blocks": "Slack refused the message's blocks",
    "msg_too_long": "the message is too long",
}
# a webhook answers with a word instead of a JSON error
WEBHOOK_PERMANENT = {
    "invalid_token": "the webhook URL was revoked",
    "no_service": "the webhook URL was revoked or the app removed",
    "channel_not_found": "the webhook's channel does not exist",
    "channel_is_archived": "the webhook's channel is archived",
    "action_prohibited": "the workspace prohibits posting there",
    "no_active_hooks": "the webhook was disabled",
}


class SlackTransport:
    label = "Slack"
    SECRETS = ("bot_token", "webhook_url")  # one of the two
    CONFIG = {"channel": "channel ID (C…) the bot posts in; not used with a webhook URL"}

    @classmethod
    def validate(cls, config: dict, secrets: dict) -> list[tuple[str, str]]:
        problems = [
            (f"config.{k}", "is not a known setting") for k in config if k not in cls.CONFIG
        ]
        has_token, has_url = bool(secrets.get("bot_token")), bool(secrets.get("webhook_url"))
        if has_token == has_url:
            problems.append(("secrets", "give either bot_token or webhook_url"))
        if has_token and not str(config.get("channel", "")).strip():
            problems.append(("config.channel", "is required with a bot token"))
        if has_url and isinstance(secrets["webhook_url"], str):
            problems += check_url(secrets["webhook_url"], "secrets.webhook_url")
        return problems

    def __init__(
        self,
        config: dict,
        secrets: dict,
        *,
        base_url: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ):
        self.channel = str(config.get("channel", "")).strip()
        self.token = secrets.get("bot_token") or ""
        self.webhook_url = secrets.get("webhook_url") or ""
        self.timeout = timeout
        # retry_handlers=[]: no sleeping retries inside a worker; the outbox retries with backoff
        self.client = (
            WebClient(
                token=self.token,
                base_url=base_url or "https://slack.com/api/",
                timeout=int(max(1, timeout)),
                retry_handlers=[],
            )
            if self.token
            else None
        )

    def send(self, notice: Notice, *, ref: dict | None = None, reply: bool = False) -> dict | None:
        text = blocks.fallback_text(notice)
        if self.client is None:
            self._webhook(text, blocks.message_blocks(notice))
            return None
        try:
            if reply:
                if not ref:  # the message was never posted: the reply stands alone
                    self.client.chat_postMessage(
                        channel=self.channel, text=text, blocks=blocks.reply_blocks(notice)
                    )
                    return None
                self.client.chat_postMessage(
                    channel=ref["channel"],
                    thread_ts=ref["ts"],
                    text=text,
                    blocks=blocks.reply_blocks(notice),
                )
                return ref
            if ref:
                try:
                    self.client.chat_update(
                        channel=ref["channel"],
                        ts=ref["ts"],
                        text=text,
                        blocks=blocks.message_blocks(notice),
                    )
                    return ref
                except SlackApiError as exc:
                    if exc.response.get("error") not in (
                        "message_not_found",
                        "cant_update_message",
                    ):
                        raise
                    # deleted in Slack: post a new one and keep that
            response = self.client.chat_postMessage(
                channel=self.channel, text=text, blocks=blocks.message_blocks(notice)
            )
            return {"channel": response["channel"], "ts": response["ts"]}
        except SlackApiError as exc:
            raise api_error(exc) from None
        except (SlackClientError, OSError) as exc:  # timeouts and refused connections
            raise TransportError(f"could not reach Slack: {exc}") from None

    def _webhook(self, text: str, message_blocks: list[dict]) -> None:
        client = WebhookClient(
            self.webhook_url, timeout=int(max(1, self.timeout)), retry_handlers=[]
        )
        try:
            response = client.send(text=text, blocks=message_blocks)
        except (SlackClientError, OSError, ValueError) as exc:
            raise TransportError(f"could not reach the Slack webhook: {exc}") from None
        if response.status_code == 200:
            return
        word = (response.body or "").strip()
        if word in WEBHOOK_PERMANENT:
            raise TransportError(f"Slack: {WEBHOOK_PERMANENT[word]} ({word})", permanent=True)
        raise classify_status(
            response.status_code, response.body, response.headers, what="the Slack webhook"
        )


def api_error(exc: SlackApiError) -> TransportError:
    response = exc.response
    error = response.get("error") or ""
    status = response.status_code
    if status == 429 or error == "ratelimited":
        return TransportError(
            "Slack is rate limiting the bot", retry_after=retry_after(response.headers) or 1.0
        )
    if error in PERMANENT_ERRORS:
        return TransportError(f"Slack: {PERMANENT_ERRORS[error]} ({error})", permanent=True)
    if status >= 500 or error in ("internal_error", "fatal_error", "service_unavailable"):
        return TransportError(f"Slack answered HTTP {status} ({error or 'no error code'})")
    return TransportError(f"Slack refused the message ({error or status})", permanent=True)
