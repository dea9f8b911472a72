"""The kubernetes provider's ``MetricsSource``: Prometheus (the cluster's), and the live charts'
request counters per slot from the standard request metrics of the target's router.

For analysis it is ``PrometheusMetrics`` at ``PROMETHEUS_URL`` (the ready-made templates,
``integrations.kubernetes.analysis``, name the ``prometheus`` provider, and a template's metric
may name another ``address``). For the deployment page's live charts, ``read_counters`` reads,
per target and in two instant queries at one evaluation time, the totals of its router's request
counter and latency histogram by slot -- the same monotonic counters the local fleet's agent
reports, so the charts' arithmetic (``releases.live.charts``: rates, error rate, p95/p99 from the
buckets, counter resets) is the same:

- ``istio``: ``istio_requests_total`` by ``response_code`` and
  ``istio_request_duration_milliseconds_bucket`` by ``le``, ``reporter="destination"``, for the
  destination workloads ``<name>-<slot>`` in the target's namespace;
- ``ingress-nginx``: ``nginx_ingress_controller_requests`` by ``status`` and
  ``nginx_ingress_controller_request_duration_seconds_bucket`` (seconds, made milliseconds) for
  the backend Services ``<name>-<slot>``.

``gateway-api`` and ``service-selector`` have no standard request metrics: their targets have no
live charts (and a target whose Prometheus is not set either). A target whose Prometheus fails
is skipped this round (logged), the others are sampled.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

from integrations.base import IntegrationError
from integrations.metrics.prometheus import PrometheusMetrics, escape

logger = logging.getLogger(__name__)

QUERIES = {
    "istio": (
        'reporter="destination", destination_workload_namespace="{ns}", '
        'destination_workload=~"{name}-.+"',
        "destination_workload",
        "sum by (destination_workload, response_code) (istio_requests_total{{{sel}}})",
        "response_code",
        "sum by (destination_workload, le) (istio_request_duration_milliseconds_bucket{{{sel}}})",
        1.0,
    ),
    "ingress-nginx": (
        'namespace="{ns}", service=~"{name}-.+"',
        "service",
        "sum by (service, status) (nginx_ingress_controller_requests{{{sel}}})",
        "status",
        "sum by (service, le) (nginx_ingress_controller_request_duration_seconds_bucket{{{sel}}})",
        1000.0,
    ),
}


class KubernetesMetrics(PrometheusMetrics):
    def __init__(self, *, target: str = "", prometheus_url: str = "", **_: Any) -> None:
        super().__init__(address=prometheus_url)
        self.target = target

    @classmethod
    def read_counters(
        cls, keys: list[str], *, configs: dict[str, dict] | None = None, **settings: Any
    ) -> dict[str, dict]:
        """``{key: {"time", "slots": {slot: counters}}}`` for the targets whose router has
        standard request metrics and whose Prometheus is known."""
        out = {}
        for key in keys:
            config = (configs or {}).get(key) or {}
            kind = (config.get("router") or {}).get("kind")
            address = config.get("prometheus_url") or settings.get("prometheus_url")
            if kind not in QUERIES or not address:
                continue
            try:
                out[key] = counters(PrometheusMetrics(address=address), kind, config)
            except IntegrationError as exc:
                logger.warning("live charts of %s: %s", key, exc.message)
        return out


def counters(prometheus: PrometheusMetrics, kind: str, config: dict[str, Any]) -> dict:
    """One reading of a target's slots' request totals and latency histogram."""
    selector, workload, requests_q, code_label, buckets_q, to_ms = QUERIES[kind]
    name = config.get("name", "")
    sel = selector.format(ns=escape(config.get("namespace", "")), name=escape(name))
    at = time.time()
    slots: dict[str, dict] = {}

    def slot_of(metric: dict) -> dict | None:
        owner = metric.get(workload, "")
        if not owner.startswith(f"{name}-"):
            return None
        return slots.setdefault(
            owner[len(name) + 1 :], {"requests": {}, "total": 0, "buckets": {}, "versions": {}}
        )

    for item in prometheus.vector(requests_q.format(sel=sel), at):
        slot = slot_of(item["metric"])
        count = _count(item)
        if slot is None or count is None:
            continue
        code = str(item["metric"].get(code_label, ""))
        klass = f"{code[0]}xx" if code[:1] in "12345" and code else "error"
        slot["requests"][klass] = slot["requests"].get(klass, 0) + count
        slot["total"] += count
    for item in prometheus.vector(buckets_q.format(sel=sel), at):
        slot = slot_of(item["metric"])
        count = _count(item)
        if slot is None or count is None:
            continue
        le = item["metric"].get("le", "+Inf")
        label = "+Inf" if le == "+Inf" else f"{float(le) * to_ms:g}"
        slot["buckets"][label] = slot["buckets"].get(label, 0) + count
    for slot in slots.values():
        if slot["buckets"] and "+Inf" not in slot["buckets"]:
            slot["buckets"]["+Inf"] = slot["total"]
    return {"time": at, "slots": slots}


def _count(item: dict) -> int | None:
    try:
        value = float(item["value"][1])
    except (KeyError, IndexError, TypeError, ValueError):
        return None
    return round(value) if math.isfinite(value) else None
