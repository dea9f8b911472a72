"""Read the fleet agent's request counters (``GET /metrics.json``) as plain values.

One call returns every target's counters, so the dashboard's sampler makes one request per agent
per round whatever the number of targets. Per slot the agent reports monotonic totals: requests by
code class (``2xx``, ``3xx``, ``4xx``, ``5xx``, ``error``), per version, and a cumulative latency
histogram (``latency_ms.buckets``: upper bound in ms -> count, last ``+Inf``). Rates and
percentiles over an interval are computed by the caller from two readings.

    counters = read_counters("http://127.0.0.1:8765", token)
    counters["api.prod"]["slots"]["green"]["requests"]["5xx"]
"""

from __future__ import annotations

from typing import Any

import httpx

from integrations.base import IntegrationError

TIMEOUT = httpx.Timeout(2.0, connect=1.0)


def read_counters(fleet_url: str, token: str, *, timeout: httpx.Timeout = TIMEOUT) -> dict:
    """``{target_key: {"time": unix seconds, "slots": {slot: counters}}}``; raises
    ``IntegrationError`` (permanent when the agent refuses the token)."""
    url = fleet_url.rstrip("/") + "/metrics.json"
    try:
        response = httpx.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=timeout)
    except httpx.HTTPError as exc:
        raise IntegrationError(
            f"the fleet agent at {fleet_url} did not answer GET /metrics.json: "
            f"{type(exc).__name__}: {exc}",
            permanent=False,
        ) from exc
    if response.status_code == 401:
        raise IntegrationError(
            f"the fleet agent at {fleet_url} refused the token for GET /metrics.json",
            permanent=True,
        )
    if not response.is_success:
        raise IntegrationError(
            f"the fleet agent at {fleet_url} answered HTTP {response.status_code} "
            "for GET /metrics.json",
            permanent=response.status_code < 500,
        )
    try:
        body = response.json()
    except ValueError as exc:
        raise IntegrationError(f"the fleet agent at {fleet_url} sent invalid JSON") from exc
    return {key: _target(value) for key, value in (body.get("targets") or {}).items()}


def _target(raw: dict[str, Any]) -> dict[str, Any]:
    slots = {}
    for name, slot in (raw.get("slots") or {}).items():
        latency = slot.get("latency_ms") or {}
        slots[name] = {
            "requests": dict(slot.get("requests") or {}),
            "total": int(slot.get("total") or 0),
            "buckets": dict(latency.get("buckets") or {}),
            "versions": {
                version: int(series.get("total") or 0)
                for version, series in (slot.get("versions") or {}).items()
            },
        }
    return {"time": float(raw.get("time") or 0.0), "slots": slots}
