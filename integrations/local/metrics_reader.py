"""Read the fleet agent's request counters (``GET /metrics.json``) as plain values.

One call returns the counters of the targets asked for (``targets``; every target's when none
are named), so the dashboard's sampler makes one request per agent per round whatever the number
of targets, and an analysis reads only its own. Per slot the agent reports monotonic totals:
requests by code class (``2xx``, ``3xx``, ``4xx``, ``5xx``, ``error``), per version, and a
cumulative latency histogram (``latency_ms.buckets``: upper bound in ms -> count, last
``+Inf``). Rates and percentiles over an interval are computed by the caller from two readings.

    counters = read_counters("http://127.0.0.1:8765", token)
    counters["api.prod"]["slots"]["green"]["requests"]["5xx"]
"""

from __future__ import annotations

from typing import Any

import httpx

from integrations import http

TIMEOUT = httpx.Timeout(2.0, connect=1.0)


def read_counters(
    fleet_url: str,
    token: str,
    *,
    targets: list[str] | None = None,
    timeout: httpx.Timeout = TIMEOUT,
    client: httpx.Client | None = None,
) -> dict:
    """``{target_key: {"time": unix seconds, "slots": {slot: counters}, "weights": the router's
    weights per slot then (absent while it spreads requests evenly), "dark_launch": the
    router's comparison of mirrored answers (``integrations.local.darklaunch``), once it has
    compared any}}``; raises
    ``IntegrationError`` (permanent when the agent refuses the token)."""
    body = read_raw(fleet_url, token, targets=targets, timeout=timeout, client=client)
    return {key: _target(value) for key, value in (body.get("targets") or {}).items()}


def read_raw(
    fleet_url: str,
    token: str,
    *,
    targets: list[str] | None = None,
    timeout: httpx.Timeout = TIMEOUT,
    client: httpx.Client | None = None,
) -> dict[str, Any]:
    """The agent's ``/metrics.json`` body as it sent it (``{"targets": {key: {...}}}``), for
    ``targets`` only when named."""
    url = fleet_url.rstrip("/") + "/metrics.json"
    where, what = f"the fleet agent at {fleet_url}", "GET /metrics.json"
    response = http.send(
        client,
        "GET",
        url,
        where=where,
        what=what,
        hint="is `manage.py fleet` running?",
        timeout=timeout,
        headers={"Authorization": f"Bearer {token}"},
        params=[("target", key) for key in targets or ()] or None,
    )
    http.refused(response, where=where, what=what)
    body = http.json_of(response, where=where, what=what)
    return body if isinstance(body, dict) else {}


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
    reading = {"time": float(raw.get("time") or 0.0), "slots": slots}
    if isinstance(raw.get("weights"), dict):  # the router's split as it read the counters
        reading["weights"] = {str(k): int(v) for k, v in raw["weights"].items()}
    if (raw.get("dark_launch") or {}).get("compared"):  # mirrored answers compared (a dark launch)
        reading["dark_launch"] = raw["dark_launch"]
    return reading
