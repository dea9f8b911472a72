"""The moments a team hears about (Argo Rollouts' notification triggers, and more), and which
time-line event (``releases.models.DeploymentEvent``: ``kind`` and ``data``) is which.

``MESSAGE`` moments update the deployment's one Slack message (every moment does); ``REPLY``
moments also post a thread reply, because someone should look now.
"""

from __future__ import annotations

TRIGGERS = {
    "started": "a deployment started",
    "step": "a step was reached",
    "waiting_for_approval": "a deployment waits for approval",
    "approved": "a deployment (or a step gate) was approved",
    "rejected": "a deployment was rejected",
    "analysis_failed": "an analysis failed",
    "analysis_inconclusive": "an analysis was inconclusive",
    "paused": "a deployment paused (or waits for promotion)",
    "resumed": "a deployment resumed",
    "rolling_back": "a rollback began",
    "rolled_back": "a deployment was rolled back",
    "aborted": "a deployment was aborted",
    "failed": "a deployment failed",
    "succeeded": "a deployment succeeded",
    "freeze_overridden": "a freeze window was overridden",
}
REPLY = frozenset(
    {
        "waiting_for_approval",
        "analysis_failed",
        "analysis_inconclusive",
        "rolled_back",
        "failed",
        "aborted",
        "freeze_overridden",
    }
)
# events that change what the deployment's message shows without being a moment of their own:
# they update a message already posted, and go nowhere else
UPDATE = "update"
UPDATE_ONLY = frozenset({"weights", "switch", "promote", "intent", "restored", "done"})
STATE_TRIGGERS = {
    "awaiting_approval": "waiting_for_approval",
    "paused": "paused",
    "rolling_back": "rolling_back",
    "rolled_back": "rolled_back",
    "aborted": "aborted",
    "failed": "failed",
    "succeeded": "succeeded",
    "rejected": "rejected",
}


def trigger_of(kind: str, data: dict | None, message: str = "") -> str | None:
    """The moment an event is, or None for one no one is told about (weights, health, holds)."""
    data = data or {}
    if kind == "created":
        return "started"
    if kind == "step":
        return "step"
    if kind == "freeze_override":
        return "freeze_overridden"
    if kind == "approval":
        return "approved" if data.get("decision") == "approve" else None
    if kind == "analysis":
        decision = data.get("decision") or data.get("phase")
        if decision in ("fail", "failed"):
            return "analysis_failed"
        return "analysis_inconclusive" if decision == "inconclusive" else None
    if kind == "state":
        state = data.get("state")
        if state == "progressing" and "resumed" in message:
            return "resumed"
        return STATE_TRIGGERS.get(state)
    if kind in UPDATE_ONLY:
        return UPDATE
    return None
