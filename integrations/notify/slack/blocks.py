"""Block Kit for a notice. Each button's ``action_id`` is ``switchyard.<action>`` and its ``value``
``<action>:<deployment id>``: what ``notifications.chatops`` reads back when it is clicked."""

from __future__ import annotations

from integrations.notify.base import Notice

BUTTONS = {
    # action: (label, style, confirm text or None)
    "approve": ("Approve", "primary", None),
    "reject": ("Reject", "danger", "Reject this deployment?"),
    "promote": ("Promote", "primary", None),
    "pause": ("Pause", None, None),
    "abort": ("Abort", "danger", "Abort and send all traffic back to the stable release?"),
    "rollback": ("Roll back", "danger", "Roll back to the previous release?"),
}
ORDER = tuple(BUTTONS)
ACTION_PREFIX = "switchyard."
STATE_EMOJI = {
    "pending": ":hourglass_flowing_sand:",
    "awaiting_approval": ":raised_hand:",
    "progressing": ":arrow_forward:",
    "paused": ":double_vertical_bar:",
    "rolling_back": ":rewind:",
    "succeeded": ":white_check_mark:",
    "failed": ":x:",
    "rolled_back": ":leftwards_arrow_with_hook:",
    "aborted": ":octagonal_sign:",
    "rejected": ":no_entry_sign:",
}


def _plain(text: str, limit: int = 150) -> dict:
    return {"type": "plain_text", "text": text[:limit] or " ", "emoji": True}


def _mrkdwn(text: str, limit: int = 3000) -> dict:
    return {"type": "mrkdwn", "text": text[:limit] or " "}


def button(action: str, deployment_id: int) -> dict:
    label, style, confirm = BUTTONS[action]
    element = {
        "type": "button",
        "action_id": f"{ACTION_PREFIX}{action}",
        "text": _plain(label),
        "value": f"{action}:{deployment_id}",
    }
    if style:
        element["style"] = style
    if confirm:
        element["confirm"] = {
            "title": _plain(f"{label}?"),
            "text": _plain(confirm, 300),
            "confirm": _plain(label),
            "deny": _plain("Cancel"),
        }
    return element


def message_blocks(notice: Notice) -> list[dict]:
    """The deployment's message: headline, facts, recent history, buttons."""
    d = notice.deployment
    emoji = STATE_EMOJI.get(str(d.get("state", "")), ":package:")
    title = f"{emoji} *{notice.title}*"
    if notice.url:
        title = f"{emoji} *<{notice.url}|{notice.title}>*"
    blocks: list[dict] = [{"type": "section", "text": _mrkdwn(title)}]
    facts = notice.facts()
    if facts:
        blocks.append(
            {"type": "section", "fields": [_mrkdwn(f"*{k}*\n{v}", 2000) for k, v in facts[:10]]}
        )
    if notice.text:
        blocks.append({"type": "section", "text": _mrkdwn(notice.text)})
    if notice.history:
        lines = "\n".join(f"• {line}" for line in notice.history[-8:])
        blocks.append({"type": "context", "elements": [_mrkdwn(lines)]})
    buttons = [button(a, d["id"]) for a in ORDER if a in notice.actions and d.get("id")]
    if buttons:
        blocks.append({"type": "actions", "block_id": f"switchyard-{d['id']}", "elements": buttons})
    return blocks


def reply_blocks(notice: Notice) -> list[dict]:
    """A thread reply: what happened, and the buttons that answer it."""
    blocks: list[dict] = [{"type": "section", "text": _mrkdwn(f"*{notice.title}*\n{notice.text}")}]
    d = notice.deployment
    buttons = [button(a, d["id"]) for a in ORDER if a in notice.actions and d.get("id")]
    if buttons:
        blocks.append({"type": "actions", "elements": buttons})
    return blocks


def fallback_text(notice: Notice) -> str:
    """The notification text (and what screen readers and old clients show)."""
    return f"{notice.title}: {notice.text}"[:3000] if notice.text else notice.title
