"""The local fleet's own counters as analysis samples.

The fleet agent counts, per target, slot and version, requests by status class (``2xx`` ..
``5xx``, and ``error`` for a connection error) and a latency histogram (``GET /metrics.json``,
token protected). Counters only grow, so a window is the difference between two readings: the
cursor ``begin`` returns is the first reading, and every ``fetch`` reads again and subtracts.

Queries (``MetricQuery.query``):

- ``error_rate``: requests and errors (5xx and connection errors), also as 0/1 observations;
- ``latency``: the latency histogram in milliseconds (``buckets`` and the exact ``sum``): the
  router's 2%-wide sketch buckets when the agent sends them (every bucket between the fastest
  and the slowest request seen, empty ones included, so each bucket's lower edge is known),
  else its 12 coarse Prometheus buckets;
- ``requests``: the request rate over the window (requests per second), one value.

Each arm reads its slot's counters for its version only (``Arm.version``), so a slot that ran
another release earlier in the window does not mix it in.
"""

from __future__ import annotations

from typing import Any

import httpx

from integrations.base import IntegrationError, MetricQuery
from integrations.local.metrics_reader import read_counters as read_fleet_counters
from integrations.local.metrics_reader import read_raw

TIMEOUT = httpx.Timeout(2.0, connect=1.0)
QUERIES = ("error_rate", "latency", "requests")
ERROR_CLASSES = ("5xx", "error")
BUCKETS_MS = ("5", "10", "25", "50", "100", "250", "500", "1000", "2500", "5000", "10000", "+Inf")


class LocalMetrics:
    def __init__(
        self,
        *,
        fleet_url: str,
        token: str,
        target: str,
        timeout: httpx.Timeout = TIMEOUT,
        client: httpx.Client | None = None,
    ) -> None:
        self.fleet_url = fleet_url.rstrip("/")
        self.target = target
        self._token = token
        self._timeout = timeout
        self._client = client

    @classmethod
    def read_counters(cls, keys: list[str], *, fleet_url: str, token: str, **_: Any) -> dict:
        """Every asked target's monotonic counters in one call to the agent, for the live charts
        (``integrations.local.metrics_reader``): ``{key: {"time", "slots": {...}}}``."""
        wanted = set(keys)
        counters = read_fleet_counters(fleet_url, token, targets=sorted(wanted))
        return {k: v for k, v in counters.items() if k in wanted}

    # -- MetricsSource -------------------------------------------------------------------------

    def begin(self, query: MetricQuery) -> dict[str, Any]:
        _check(query)
        reading = self._read()
        return {
            "baseline": self._arm(reading, query.baseline),
            "canary": self._arm(reading, query.canary),
        }

    def fetch(
        self, query: MetricQuery, cursor: dict[str, Any], start: float, end: float
    ) -> dict[str, dict[str, Any]]:
        _check(query)
        reading = self._read()
        seconds = max(end - start, 1e-9)
        out = {}
        for name, arm in (("baseline", query.baseline), ("canary", query.canary)):
            delta = _delta((cursor or {}).get(name) or _zero(), self._arm(reading, arm), arm.slot)
            out[name] = _series(query.query, delta, seconds)
        return out

    # -- reading -------------------------------------------------------------------------------

    def _read(self) -> dict[str, Any]:
        body = read_raw(
            self.fleet_url,
            self._token,
            targets=[self.target],
            timeout=self._timeout,
            client=self._client,
        )
        return (body.get("targets") or {}).get(self.target) or {}

    @staticmethod
    def _arm(reading: dict[str, Any], arm) -> dict[str, Any]:
        slot = (reading.get("slots") or {}).get(arm.slot) or {}
        if arm.version is None:
            return _counters(slot)
        return _counters((slot.get("versions") or {}).get(arm.version) or {})


def _check(query: MetricQuery) -> None:
    if query.query not in QUERIES:
        raise IntegrationError(
            f"the local provider knows the queries {', '.join(QUERIES)}, not {query.query!r}",
            permanent=True,
        )


def _zero() -> dict[str, Any]:
    return {"requests": {}, "total": 0, "buckets": {}, "sum": 0.0, "sketch": {}, "gamma": None}


def _counters(raw: dict[str, Any]) -> dict[str, Any]:
    latency = raw.get("latency_ms") or {}
    sketch = latency.get("sketch") or {}
    return {
        "requests": {k: int(v) for k, v in (raw.get("requests") or {}).items()},
        "total": int(raw.get("total") or 0),
        "buckets": {str(k): int(v) for k, v in (latency.get("buckets") or {}).items()},
        "sum": float(latency.get("sum") or 0.0),
        "sketch": {int(k): int(v) for k, v in (sketch.get("counts") or {}).items()},
        "gamma": float(sketch["gamma"]) if sketch.get("gamma") else None,
    }


def _delta(before: dict[str, Any], after: dict[str, Any], slot: str) -> dict[str, Any]:
    if after["total"] < before["total"]:
        raise IntegrationError(
            f"the request counters of slot {slot!r} went backwards (the fleet agent restarted?): "
            "this window cannot be compared",
            permanent=False,
        )
    requests = {
        k: after["requests"].get(k, 0) - before["requests"].get(k, 0)
        for k in set(after["requests"]) | set(before["requests"])
    }
    cumulative = [after["buckets"].get(b, 0) - before["buckets"].get(b, 0) for b in BUCKETS_MS]
    counts, previous = [], 0
    for value in cumulative:
        counts.append(max(0, value - previous))
        previous = max(previous, value)
    sketch = {
        i: n - before["sketch"].get(i, 0)
        for i, n in after["sketch"].items()
        if n > before["sketch"].get(i, 0)
    }
    return {
        "requests": requests,
        "total": after["total"] - before["total"],
        "buckets": counts,
        "sum": max(0.0, after["sum"] - before["sum"]),
        "sketch": sketch,
        "gamma": after.get("gamma"),
    }


def sketch_buckets(sketch: dict[int, int], gamma: float) -> list[list]:
    """Sparse sketch counts -> ``(upper bound, count)`` buckets, every bucket from the fastest to
    the slowest one seen (empty ones too, so each bucket's lower edge is the previous bound),
    starting with the first one's lower edge and ending with an empty ``+Inf``."""
    if not sketch:
        return [["+Inf", 0]]
    low, high = min(sketch), max(sketch)
    out: list[list] = [[gamma ** (low - 1), 0]]
    out += [[gamma**i, sketch.get(i, 0)] for i in range(low, high + 1)]
    out.append(["+Inf", 0])
    return out


def _series(query: str, delta: dict[str, Any], seconds: float) -> dict[str, Any]:
    total = delta["total"]
    errors = min(total, sum(max(0, delta["requests"].get(k, 0)) for k in ERROR_CLASSES))
    if query == "error_rate":
        pairs = [(0.0, total - errors), (1.0, errors)]
        pairs = [(v, w) for v, w in pairs if w > 0]
        return {
            "values": [v for v, _ in pairs],
            "weights": [w for _, w in pairs],
            "total": total,
            "errors": errors,
            "sum": float(errors),
        }
    if query == "latency":
        if delta.get("gamma") and (delta["sketch"] or not sum(delta["buckets"])):
            buckets = sketch_buckets(delta["sketch"], delta["gamma"])
        else:
            buckets = [[b, c] for b, c in zip(BUCKETS_MS, delta["buckets"], strict=True)]
        return {
            "buckets": buckets,
            "sum": delta["sum"],
            "total": sum(delta["buckets"]),
            "errors": errors,
        }
    return {"values": [total / seconds], "total": total, "errors": errors}
