"""Post an Adaptive Card (schema 1.4) wrapped as a Teams message to a Workflows webhook."""

from __future__ import annotations

import json

from integrations.notify.base import DEFAULT_TIMEOUT, Notice, check_url, post_json

CARD_SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
ATTENTION = {"failed", "rolled_back", "aborted", "rejected", "analysis_failed"}
GOOD = {"succeeded", "approved"}


def card(notice: Notice) -> dict:
    """The Adaptive Card: title, what happened, the facts, and a link to the deployment."""
    color = (
        "Attention" if notice.trigger in ATTENTION else "Good" if notice.trigger in GOOD else None
    )
    title = {"type": "TextBlock", "text": notice.title, "weight": "Bolder", "size": "Medium"}
    if color:
        title["color"] = color
    body: list[dict] = [title]
    if notice.text:
        body.append({"type": "TextBlock", "text": notice.text, "wrap": True})
    facts = notice.facts()
    if facts:
        body.append({"type": "FactSet", "facts": [{"title": k, "value": v} for k, v in facts]})
    if notice.history:
        body.append(
            {
                "type": "TextBlock",
                "text": "\n".join(f"- {line}" for line in notice.history[-5:]),
                "wrap": True,
                "isSubtle": True,
                "size": "Small",
            }
        )
    content = {"$schema": CARD_SCHEMA, "type": "AdaptiveCard", "version": "1.4", "body": body}
    if notice.url:
        content["actions"] = [
            {"type": "Action.OpenUrl", "title": "Open in Switchyard", "url": notice.url}
        ]
    return {
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": None,
                "content": content,
            }
        ],
    }


class TeamsTransport:
    label = "Microsoft Teams"
    SECRETS = ("webhook_url",)
    CONFIG: dict[str, str] = {}

    @classmethod
    def validate(cls, config: dict, secrets: dict) -> list[tuple[str, str]]:
        problems = [(f"config.{k}", "is not a known setting") for k in config]
        if not secrets.get("webhook_url"):
            return [*problems, ("secrets.webhook_url", "is required")]
        if isinstance(secrets["webhook_url"], str):
            problems += check_url(secrets["webhook_url"], "secrets.webhook_url")
        return problems

    def __init__(self, config: dict, secrets: dict, *, timeout: float = DEFAULT_TIMEOUT):
        self.url = secrets.get("webhook_url") or ""
        self.timeout = timeout

    def send(self, notice: Notice, *, ref: dict | None = None, reply: bool = False) -> dict | None:
        body = json.dumps(card(notice)).encode()
        post_json(self.url, body, timeout=self.timeout, what="the Teams webhook")
        return None
