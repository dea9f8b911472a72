"""Smoke checks: plain HTTP GETs against a blue-green preview, before any user sees it.

``run(checks, urls)`` GETs every check's path on every base URL (the target's preview endpoint,
or, for a provider without one, each ready instance of the new release) with explicit timeouts,
and returns a JSON-ready result that the reconcile loop stores as ``Deployment.checks["smoke"]``
for the next tick's ``Observation.checks``:

    {"passed": true, "at": 1700000000.0, "urls": [...],
     "results": [{"url", "path", "ok", "status", "message"}]}

No base URL at all fails the checks (nothing could be checked, so nothing is known to work).
"""

from __future__ import annotations

import time
from typing import Any

import httpx

from integrations.base import TargetStatus

TIMEOUT = httpx.Timeout(3.0, connect=1.0)
BODY_LIMIT = 64 * 1024  # the part of a body searched for ``body_contains``


def urls_for(status: TargetStatus, slot: str) -> list[str]:
    """Where to run the checks: the preview endpoint, else the slot's ready instances."""
    if status.preview_endpoint:
        return [status.preview_endpoint]
    slot_status = status.slots.get(slot)
    if slot_status is None:
        return []
    return [
        f"http://{i.address}" for i in slot_status.instances if i.state == "ready" and i.address
    ]


def run(checks: list[dict[str, Any]], urls: list[str]) -> dict[str, Any]:
    results: list[dict[str, Any]] = []
    with httpx.Client(timeout=TIMEOUT, follow_redirects=False) as client:
        for base in urls:
            for check in checks:
                results.append(_one(client, base.rstrip("/"), check))
    if not urls:
        message = "no preview endpoint and no ready instance of the new release to check"
        return {"passed": False, "at": time.time(), "urls": [], "results": [], "message": message}
    return {
        "passed": all(r["ok"] for r in results),
        "at": time.time(),
        "urls": list(urls),
        "results": results,
    }


def _one(client: httpx.Client, base: str, check: dict[str, Any]) -> dict[str, Any]:
    path, expected = check["path"], check.get("status", 200)
    wanted = check.get("body_contains")
    url = base + path
    out: dict[str, Any] = {"url": url, "path": path, "ok": False, "status": None}
    try:
        response = client.get(url)
    except httpx.HTTPError as exc:
        out["message"] = f"GET {path} did not answer: {type(exc).__name__}: {exc}".strip()
        return out
    out["status"] = response.status_code
    if response.status_code != expected:
        out["message"] = f"GET {path} answered {response.status_code}, expected {expected}"
    elif wanted is not None and wanted not in response.text[:BODY_LIMIT]:
        out["message"] = f"GET {path} answered {expected} without {wanted!r} in its body"
    else:
        out.update(ok=True, message=f"GET {path} answered {expected}")
    return out
