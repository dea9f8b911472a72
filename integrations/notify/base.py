"""What every transport shares: the notice it renders, the error it raises, the HTTP call."""

from __future__ import annotations

import email.utils
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import httpx

DEFAULT_TIMEOUT = 5.0  # seconds; a chat service slower than this is retried later, not waited for


class TransportError(Exception):
    """A delivery failed. ``permanent``: trying again cannot help (a revoked token, a channel that
    does not exist): the channel is disabled with this message. Otherwise the delivery is retried
    with backoff, no sooner than ``retry_after`` seconds when the service said so (429)."""

    def __init__(self, message: str, *, permanent: bool = False, retry_after: float | None = None):
        super().__init__(message)
        self.message = message
        self.permanent = permanent
        self.retry_after = retry_after


@dataclass(frozen=True)
class Notice:
    """One notification, in plain values.

    ``trigger``: what happened (``started``, ``analysis_failed``, ``test``… see
    ``notifications.triggers``); ``id``: unique per notice and destination (the Standard Webhooks
    ``webhook-id``, so a receiver can drop a retried duplicate); ``deployment``: the API's
    deployment object (``{}`` for a test message); ``event``: the time-line event that caused it;
    ``actions``: the buttons the deployment's state allows (``approve``, ``reject``, ``promote``,
    ``pause``, ``abort``, ``rollback``); ``history``: "who did what" lines, oldest first.
    """

    id: str
    trigger: str
    title: str
    text: str
    url: str = ""
    deployment: dict[str, Any] = field(default_factory=dict)
    event: dict[str, Any] | None = None
    actions: tuple[str, ...] = ()
    history: tuple[str, ...] = ()
    at: str = ""  # ISO 8601, when it happened

    def facts(self) -> list[tuple[str, str]]:
        """(label, value) pairs every rendering shows: state, step, traffic, analysis, who."""
        d = self.deployment
        if not d:
            return []
        out = [
            ("Service", f"{d.get('service')} → {d.get('environment')}"),
            ("Version", f"{d.get('stable_version') or 'nothing'} → {d.get('target_version')}"),
            ("State", str(d.get("state", "")).replace("_", " ")),
        ]
        step = (d.get("step") or {}).get("description")
        if step:
            out.append(("Step", step))
        weights = d.get("weights") or {}
        if weights:
            out.append(("Traffic", " / ".join(f"{k} {v}%" for k, v in weights.items())))
        runs = d.get("analysis") or []
        if runs:
            last = runs[-1]
            out.append(("Analysis", f"{last.get('name')}: {last.get('phase')}"))
        if d.get("created_by"):
            out.append(("Started by", d["created_by"]))
        return out


class Transport(Protocol):
    """Built as ``cls(config, secrets, **options)``; ``send`` returns what the transport wants
    kept for the next notice about the same deployment (Slack: the message's channel and ``ts``)
    or None. ``ref``: what it returned last time; ``reply``: a thread reply, not the message."""

    def send(
        self, notice: Notice, *, ref: dict | None = None, reply: bool = False
    ) -> dict | None: ...


def retry_after(headers) -> float | None:
    """Seconds from a ``Retry-After`` header (seconds or an HTTP date), or None."""
    raw = (headers or {}).get("Retry-After") or (headers or {}).get("retry-after")
    if not raw:
        return None
    raw = str(raw).strip()
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def classify_status(status: int, body: str, headers=None, *, what: str) -> TransportError:
    """An HTTP error answer as a TransportError: 408, 429 and 5xx are worth retrying; any other
    4xx (a bad URL, a revoked secret, a refused payload) is not."""
    snippet = (body or "").strip().replace("\n", " ")[:200]
    message = f"{what} answered HTTP {status}" + (f": {snippet}" if snippet else "")
    transient = status in (408, 425, 429) or status >= 500
    return TransportError(
        message, permanent=not transient, retry_after=retry_after(headers) if transient else None
    )


_clients: dict[int, httpx.Client] = {}


def _client() -> httpx.Client:
    """One pooled client per process (a Celery worker forks: a child never reuses its parent's
    connections). A fresh ``httpx.post`` builds a client -- and its TLS context -- per call,
    ~20 ms of CPU each time; kept-alive connections also spare a handshake per notice."""
    pid = os.getpid()
    client = _clients.get(pid)
    if client is None:
        _clients.clear()
        client = _clients[pid] = httpx.Client(follow_redirects=False)
    return client


def post_json(
    url: str,
    body: bytes,
    *,
    headers: dict[str, str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    what: str = "the receiver",
) -> httpx.Response:
    """POST ``body`` (already encoded JSON) and return the 2xx answer, or raise TransportError."""
    try:
        response = _client().post(
            url,
            content=body,
            headers={"Content-Type": "application/json", **(headers or {})},
            timeout=timeout,
        )
    except httpx.TimeoutException:
        raise TransportError(f"{what} did not answer within {timeout:g} s") from None
    except httpx.InvalidURL as exc:
        raise TransportError(f"{what}'s URL is invalid: {exc}", permanent=True) from None
    except httpx.HTTPError as exc:
        raise TransportError(f"could not reach {what}: {exc}") from None
    if not 200 <= response.status_code < 300:
        raise classify_status(response.status_code, response.text, response.headers, what=what)
    return response


def check_url(value: Any, path: str) -> list[tuple[str, str]]:
    if not isinstance(value, str) or not value.startswith(("https://", "http://")):
        return [(path, "must be an http(s):// URL")]
    return []
