"""Ready-made analysis templates for the standard request metrics of the kubernetes routers.

Each judges a canary against its baseline per slot, the way ``docs/analysis.md`` describes:
a sequential error-rate test on 5xx answers and a Mann-Whitney test on p95 latency, both from
Prometheus. The slot's pods are found by the names the provider gives them: ingress-nginx labels
its metrics with the backend Service (``<name>-<slot>``), Istio with the destination workload
(the Deployment ``<name>-<slot>``). Arguments: ``namespace`` and ``name`` (the target's).

``manage.py kubernetes_templates`` installs them as ``kubernetes-ingress-nginx`` and
``kubernetes-istio``; ``template_for(config)`` names the one a target's router can use (None for
``service-selector`` and ``gateway-api``, whose implementations have no standard metrics).
"""

from __future__ import annotations

from typing import Any

ARGS = [{"name": "namespace"}, {"name": "name"}, {"name": "max-p95-ms", "value": "500"}]
JUDGE = {"pass_score": 95, "marginal_score": 75, "groups": {"errors": 70, "latency": 30}}

_NGINX = 'namespace="{{args.namespace}}", service="{{args.name}}-{{slot}}"'
_ISTIO = (
    'reporter="destination", destination_workload_namespace="{{args.namespace}}", '
    'destination_workload="{{args.name}}-{{slot}}"'
)

TEMPLATES: dict[str, dict[str, Any]] = {
    "kubernetes-ingress-nginx": {
        "args": ARGS,
        "metrics": [
            {
                "name": "errors",
                "provider": "prometheus",
                "test": "sequential",
                # the sequential test judges the counts' rates itself; said explicitly because
                # the template check refuses the default ("rate") for a prometheus metric
                "statistic": "last",
                "query": f"sum(increase(nginx_ingress_controller_requests{{{_NGINX}, "
                f'status=~"5.."}}[{{{{window}}}}]))',
                "total_query": f"sum(increase(nginx_ingress_controller_requests{{{_NGINX}}}"
                "[{{window}}]))",
                "interval": "10s",
            },
            {
                "name": "latency",
                "provider": "prometheus",
                "test": "mann_whitney",
                "query": "1000 * histogram_quantile(0.95, sum by (le) (rate("
                f"nginx_ingress_controller_request_duration_seconds_bucket{{{_NGINX}}}[1m])))",
                "interval": "30s",
                "count": 10,
            },
        ],
        "judge": JUDGE,
    },
    "kubernetes-istio": {
        "args": ARGS,
        "metrics": [
            {
                "name": "errors",
                "provider": "prometheus",
                "test": "sequential",
                # the sequential test judges the counts' rates itself; said explicitly because
                # the template check refuses the default ("rate") for a prometheus metric
                "statistic": "last",
                "query": f"sum(increase(istio_requests_total{{{_ISTIO}, "
                f'response_code=~"5.."}}[{{{{window}}}}]))',
                "total_query": f"sum(increase(istio_requests_total{{{_ISTIO}}}[{{{{window}}}}]))",
                "interval": "10s",
            },
            {
                "name": "latency",
                "provider": "prometheus",
                "test": "mann_whitney",
                "query": "histogram_quantile(0.95, sum by (le) (rate("
                f"istio_request_duration_milliseconds_bucket{{{_ISTIO}}}[1m])))",
                "interval": "30s",
                "count": 10,
            },
        ],
        "judge": JUDGE,
    },
}
BY_ROUTER = {"ingress-nginx": "kubernetes-ingress-nginx", "istio": "kubernetes-istio"}


def template_for(config: dict[str, Any] | None) -> str | None:
    """The ready-made template a target's router has metrics for, if any."""
    kind = ((config or {}).get("router") or {}).get("kind")
    return BY_ROUTER.get(kind)
