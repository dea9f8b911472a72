"""PromQL over Prometheus' HTTP API as analysis samples.

Queries are templates rendered once per arm: ``{{slot}}``, ``{{version}}``, ``{{target}}``,
``{{service}}``, ``{{environment}}``, ``{{window}}`` (the window's length, "42s"),
``{{interval}}`` (the step, "5s") and ``{{args.NAME}}``. Every value is escaped as inside a
PromQL string literal (backslash, double quote, newline), so an argument cannot end the label
matcher it is placed in. For example the local routers' error ratio per slot:

    sum(increase(switchyard_router_requests_total{target="{{target}}", slot="{{slot}}",
        version="{{version}}", code_class=~"5xx|error"}[{{window}}]))

By ``MetricQuery.mode``:

- ``counts``: ``query`` counts the errors and ``total_query`` all requests over the window
  (instant queries at its end, typically ``sum(increase(...[{{window}}]))``), rounded;
- ``range``: ``/api/v1/query_range`` over the window, one value per ``step``: every point of
  every series returned is an observation (the Mann-Whitney test's sample);
- ``instant``: ``/api/v1/query`` at the window's end: the value of each series returned;
- ``histogram`` (the quantile test): ``/api/v1/query`` at the window's end for a histogram at
  its native resolution -- either a classic histogram's buckets, a vector with an ``le`` label
  (``sum by (le) (increase(x_bucket{...}[{{window}}]))``: cumulative counts, made per bucket),
  or a native (sparse, exponential) histogram (``sum(increase(x{...}[{{window}}]))``: its
  ``buckets`` as Prometheus sends them). Every bucket the histogram has is used; none is
  invented between them, so a coarse classic histogram (Prometheus' default buckets are 2-2.5x
  apart) limits what the test can see, and its verdict says so.

An empty result is no data (an empty series), never an error. Errors: Prometheus refusing the
query (HTTP 400/422, ``bad_data``) or the credentials is permanent; anything else (down, slow,
5xx, a timeout) is not. Every call has an explicit timeout.
"""

from __future__ import annotations

import math
import re
from typing import Any

import httpx

from integrations import http
from integrations.base import IntegrationError, MetricQuery

TIMEOUT = httpx.Timeout(5.0, connect=2.0)
MAX_POINTS = 10_000  # Prometheus refuses more than 11,000 points per series
PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_.\-]+)\s*\}\}")


def escape(value: str) -> str:
    """``value`` safe inside a double-quoted PromQL string."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render(template: str, values: dict[str, Any]) -> str:
    def replace(match: re.Match) -> str:
        name = match.group(1)
        if name not in values:
            raise IntegrationError(
                f"the query uses {{{{{name}}}}}, which has no value here", permanent=True
            )
        return escape(str(values[name]))

    return PLACEHOLDER.sub(replace, template)


def _seconds(value: float) -> str:
    return f"{max(1, round(value))}s"


class PrometheusMetrics:
    def __init__(
        self,
        *,
        address: str,
        timeout: httpx.Timeout = TIMEOUT,
        headers: dict[str, str] | None = None,
        **_: Any,
    ) -> None:
        if not address:
            raise IntegrationError(
                "no Prometheus address: set the metric's 'address' or PROMETHEUS_URL",
                permanent=True,
            )
        self.address = address.rstrip("/")
        self._timeout = timeout
        self._headers = dict(headers or {})

    # -- MetricsSource -------------------------------------------------------------------------

    def begin(self, query: MetricQuery) -> dict[str, Any]:
        return {}  # Prometheus keeps history: nothing to remember

    def fetch(
        self, query: MetricQuery, cursor: dict[str, Any], start: float, end: float
    ) -> dict[str, dict[str, Any]]:
        out = {}
        for name, arm in (("baseline", query.baseline), ("canary", query.canary)):
            values = {
                **query.values,
                "target": query.values.get("target", query.target),
                "slot": arm.slot,
                "version": arm.version or "",
                "window": _seconds(end - start),
                "interval": _seconds(query.step),
            }
            out[name] = self._arm(query, values, start, end)
        return out

    # -- one arm -------------------------------------------------------------------------------

    def _arm(self, query: MetricQuery, values: dict, start: float, end: float) -> dict[str, Any]:
        promql = render(query.query, values)
        if query.mode == "counts":
            if not query.total_query:
                raise IntegrationError("a counts query needs a total_query", permanent=True)
            errors = _count(self.instant(promql, end))
            total = _count(self.instant(render(query.total_query, values), end))
            errors = min(errors, total)
            pairs = [(v, w) for v, w in ((0.0, total - errors), (1.0, errors)) if w > 0]
            return {
                "values": [v for v, _ in pairs],
                "weights": [w for _, w in pairs],
                "total": total,
                "errors": errors,
                "sum": float(errors),
            }
        if query.mode == "histogram":
            data = self._get("/api/v1/query", {"query": promql, "time": f"{end:.3f}"})
            return histogram(data)
        if query.mode == "range" and end - start >= query.step:
            points = self.range(promql, start, end, query.step)
        else:
            points = self.instant(promql, end)
        return {"values": points}

    # -- the HTTP API --------------------------------------------------------------------------

    def instant(self, promql: str, at: float) -> list[float]:
        data = self._get("/api/v1/query", {"query": promql, "time": f"{at:.3f}"})
        return _values(data)

    def vector(self, promql: str, at: float) -> list[dict[str, Any]]:
        """An instant query's series as Prometheus sends them (``{"metric", "value"}``)."""
        data = self._get("/api/v1/query", {"query": promql, "time": f"{at:.3f}"})
        return list(data.get("result") or []) if data.get("resultType") == "vector" else []

    def range(self, promql: str, start: float, end: float, step: float) -> list[float]:
        step = max(step, (end - start) / MAX_POINTS)
        params = {
            "query": promql,
            "start": f"{start:.3f}",
            "end": f"{end:.3f}",
            "step": f"{step:g}",
        }
        return _values(self._get("/api/v1/query_range", params))

    def _get(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        where = f"Prometheus at {self.address}"
        response = http.send(
            None,
            "GET",
            self.address + path,
            where=where,
            what=f"GET {path}",
            timeout=self._timeout,
            params=params,
            headers=self._headers,
        )
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status_code in (401, 403):
            raise IntegrationError(
                f"{where} refused the credentials (HTTP {response.status_code})", permanent=True
            )
        if response.status_code in (400, 422) or body.get("errorType") == "bad_data":
            raise IntegrationError(
                f"{where} refused the query {params['query']!r}: "
                f"{body.get('error') or response.text[:300]}",
                permanent=True,
            )
        if not response.is_success or body.get("status") != "success":
            raise IntegrationError(
                f"{where} answered HTTP {response.status_code} for {path}: "
                f"{body.get('error') or response.text[:300]}",
                permanent=False,
            )
        return body.get("data") or {}


def _number(text: Any) -> float:
    try:
        return float(text)  # "NaN", "+Inf" and "-Inf" included
    except (TypeError, ValueError):
        return math.nan


def _values(data: dict[str, Any]) -> list[float]:
    kind, result = data.get("resultType"), data.get("result")
    if kind == "scalar":
        return [_number(result[1])] if result else []
    if kind == "vector":
        return [_number(item["value"][1]) for item in result or []]
    if kind == "matrix":
        return [_number(v) for item in result or [] for _, v in item.get("values") or []]
    return []


def histogram(data: dict[str, Any]) -> dict[str, Any]:
    """A query's answer as one histogram: ``{"buckets": [[upper, count], ...], "total", "sum"}``
    (non-cumulative, ascending, the last ``+Inf``; several series are added up)."""
    result = data.get("result") or [] if data.get("resultType") == "vector" else []
    cumulative: dict[float, float] = {}
    native: dict[tuple[float, float], float] = {}
    total_sum = 0.0
    for item in result:
        if "histogram" in item:  # a native histogram: [t, {count, sum, buckets}]
            body = item["histogram"][1]
            total_sum += _number(body.get("sum", 0))
            for _, lower, upper, count in body.get("buckets") or []:
                key = (_number(lower), _number(upper))
                native[key] = native.get(key, 0.0) + max(0.0, _number(count))
        elif "le" in (item.get("metric") or {}):
            bound = _number(item["metric"]["le"])
            value = _number(item["value"][1])
            if math.isfinite(value):
                cumulative[bound] = cumulative.get(bound, 0.0) + value
    buckets: list[list] = []
    if native:
        edge = None
        for (lower, upper), count in sorted(native.items()):
            if lower > 0 and (edge is None or lower > edge * (1 + 1e-9)):
                buckets.append([lower, 0.0])  # the bucket's lower edge, so its width is known
            buckets.append([upper if math.isfinite(upper) else "+Inf", count])
            edge = upper
    elif cumulative:
        previous = 0.0
        for bound in sorted(cumulative):
            count = max(0.0, cumulative[bound] - previous)  # counters reset: never negative
            previous = max(previous, cumulative[bound])
            buckets.append([bound if math.isfinite(bound) else "+Inf", count])
    if buckets and buckets[-1][0] != "+Inf":
        buckets.append(["+Inf", 0.0])
    out: dict[str, Any] = {"buckets": [[b, round(c)] for b, c in buckets]}
    out["total"] = int(sum(c for _, c in out["buckets"]))
    if native:
        out["sum"] = total_sum
    return out


def _count(values: list[float]) -> int:
    finite = [v for v in values if math.isfinite(v)]
    return max(0, round(sum(finite)))


def settings_options() -> dict[str, Any]:
    """The Prometheus provider's own settings: ``PROMETHEUS_URL`` (a template's metric may name
    another ``address``)."""
    from django.conf import settings  # read when a source is built, never at import

    return {"address": getattr(settings, "PROMETHEUS_URL", "") or ""}
