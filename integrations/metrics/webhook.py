"""Flagger's webhooks as an analysis measurement: each hook is POSTed Flagger's payload and its
answer is the observation.

A metric ``{"provider": "webhook", "query": "all"}`` (or ``"any"``) of a template whose argument
``hooks`` is a JSON list of ``{"name", "url", "timeout", "metadata"}`` (written by the Flagger
translation, ``strategies.flagger``) calls every hook in turn at each measurement with

    {"name": <the Canary's name>, "namespace": <its namespace>, "phase": <args.phase>,
     "checksum": <the new release's version>, "metadata": <the hook's metadata>}

each with its own explicit ``timeout`` (seconds, at most ``MAX_TIMEOUT``). ``all``: the value is
1 when every hook answered 2xx, else 0 (a rollout or pre-rollout hook: a hook that does not
answer, times out or answers otherwise is a failed check, as in Flagger); ``any``: 1 when at
least one answered 2xx (a rollback hook: 2xx asks for the rollback). Calls happen where
measurements do: in the reconcile tick's worker, outside any transaction.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx

from integrations.base import IntegrationError, MetricQuery

logger = logging.getLogger(__name__)
DEFAULT_TIMEOUT = 10.0
MAX_TIMEOUT = 60.0


def settings_options() -> dict[str, Any]:
    return {}


def payload(hook: dict[str, Any], phase: str, checksum: str) -> dict[str, Any]:
    """Flagger's webhook payload (CanaryWebhookPayload)."""
    return {
        "name": hook.get("canary", ""),
        "namespace": hook.get("namespace", ""),
        "phase": phase,
        "checksum": checksum,
        "metadata": {str(k): str(v) for k, v in (hook.get("metadata") or {}).items()},
    }


def call(hook: dict[str, Any], body: dict[str, Any]) -> tuple[bool, str]:
    """POST ``body`` to the hook: (answered 2xx, what happened in words). Never raises."""
    seconds = min(float(hook.get("timeout") or DEFAULT_TIMEOUT), MAX_TIMEOUT)
    try:
        response = httpx.post(hook["url"], json=body, timeout=httpx.Timeout(seconds))
    except httpx.TimeoutException:
        return False, f"{hook.get('name')}: no answer within {seconds:g}s"
    except httpx.HTTPError as exc:
        return False, f"{hook.get('name')}: {type(exc).__name__}: {exc}"
    said = f"{hook.get('name')}: HTTP {response.status_code}"
    return response.is_success, said


def hooks_of(query: MetricQuery) -> list[dict[str, Any]]:
    try:
        hooks = json.loads(query.values.get("args.hooks") or "[]")
    except ValueError:
        raise IntegrationError("the webhooks argument is not JSON", permanent=True) from None
    if not isinstance(hooks, list) or not all(isinstance(h, dict) and h.get("url") for h in hooks):
        raise IntegrationError("the webhooks argument must list {name, url}", permanent=True)
    return hooks


class WebhookMetrics:
    def __init__(self, **_: Any) -> None:
        pass

    def begin(self, query: MetricQuery) -> dict[str, Any]:
        return {}

    def fetch(
        self, query: MetricQuery, cursor: dict[str, Any], start: float, end: float
    ) -> dict[str, dict[str, Any]]:
        phase = query.values.get("args.phase") or "Progressing"
        checksum = query.canary.version or ""
        answers = []
        for hook in hooks_of(query):
            ok, said = call(hook, payload(hook, phase, checksum))
            answers.append(ok)
            logger.info("webhook %s (%s): %s", hook.get("url"), phase, said)
        hit = any(answers) if query.query == "any" else all(answers)
        return {"baseline": {"values": []}, "canary": {"values": [1.0 if hit else 0.0]}}
