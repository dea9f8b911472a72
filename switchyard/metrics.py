"""``/metrics``: releases' metrics (``releases.reports.prometheus``: deployments, canary weights,
analyses, rollbacks), then the flags' (``flags.metrics``: evaluations per flag and variant, whether
each flag serves), in one Prometheus text document behind the same bearer token. Here, because
``releases`` never imports the apps built on it."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET

from flags import metrics as flag_metrics
from releases.reports import prometheus


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    response = prometheus.metrics(request)
    if response.status_code == 200:
        response.content = response.content + flag_metrics.render()
    return response
