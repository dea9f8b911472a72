"""Flagger's ``event`` and ``post-rollout`` webhooks of a deployment's spec (the canary spec's
``webhooks``, written by ``strategies.flagger``): called by the notifications worker when its
events fan out (``outbox.fanout``: once per event), after the events' rows are committed and
outside any transaction, each call with the hook's own explicit timeout
(``integrations.metrics.webhook.call``). A hook that fails is logged and not retried, as in
Flagger.

- ``event``: every event of the deployment, with Flagger's payload (``name``, ``namespace``,
  ``phase``, ``checksum``, and ``metadata`` holding ``eventMessage``, ``eventType`` (``Normal``,
  or ``Warning`` for failures) and ``timestamp`` in milliseconds);
- ``post-rollout``: once the deployment has ended (succeeded, failed, rolled back, aborted),
  phase ``Succeeded`` or ``Failed``, with the hook's own metadata.
"""

from __future__ import annotations

import logging

from integrations.metrics.webhook import call, payload
from notifications import triggers
from releases.models import Deployment, DeploymentEvent

logger = logging.getLogger(__name__)

ENDED = {"succeeded": "Succeeded", "failed": "Failed", "rolled_back": "Failed", "aborted": "Failed"}
WARNINGS = ("analysis_failed", "rolling_back", "rolled_back", "failed", "aborted", "rejected")
PHASES = {
    "pending": "Initializing",
    "awaiting_approval": "Waiting",
    "progressing": "Progressing",
    "paused": "Waiting",
    "succeeded": "Succeeded",
}


def hooks_of(d: Deployment, kind: str) -> list[dict]:
    return [h for h in (d.strategy or {}).get("webhooks") or [] if h.get("type") == kind]


def tell(d: Deployment, events: list[DeploymentEvent]) -> list[tuple[str, bool]]:
    """Call the deployment's event hooks for ``events`` and its post-rollout hooks if one of
    them ended it; (the hook's name, answered 2xx) per call."""
    told: list[tuple[str, bool]] = []
    if not (d.strategy or {}).get("webhooks"):
        return told
    checksum = d.release.version
    phase = PHASES.get(str(d.state), "Failed")
    for event in events:
        trigger = triggers.trigger_of(event.kind, event.data, event.message)
        for hook in hooks_of(d, "event"):
            body = payload(hook, phase, checksum)
            body["metadata"] = {
                "eventMessage": event.message,
                "eventType": "Warning" if trigger in WARNINGS else "Normal",
                "timestamp": str(int(event.created_at.timestamp() * 1000)),
            }
            told.append(_call(d, hook, body))
        if trigger in ENDED:
            for hook in hooks_of(d, "post-rollout"):
                told.append(_call(d, hook, payload(hook, ENDED[trigger], checksum)))
    return told


def _call(d: Deployment, hook: dict, body: dict) -> tuple[str, bool]:
    ok, said = call(hook, body)
    log = logger.info if ok else logger.warning
    log("deployment %s: %s webhook %s", d.pk, hook.get("type"), said)
    return hook.get("name", ""), ok
