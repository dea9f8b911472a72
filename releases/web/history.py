"""History: every deployment of a service (or all) in an environment over a period, with its
outcome, duration, who started it and why it was rolled back, and the delivery figures of the same
selection (``releases.reports.delivery`` defines them; the page's help text repeats the
definitions).
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import render
from django.utils import timezone

from releases.models import Deployment, Environment, Service
from releases.reports import delivery
from releases.web.common import PERIODS, period_from, span, visible, visible_deployments

PAGE_SIZE = 50


@login_required
def history_page(request):
    now = timezone.now()
    environments = list(visible(request, Environment.objects.all(), env="pk", service=None))
    services = list(visible(request, Service.objects.all(), env=None, service="pk"))
    env_slug = request.GET.get("environment", "")
    environment = next((e for e in environments if e.slug == env_slug), None)
    if environment is None:
        environment = max(environments, key=lambda e: (e.order, e.slug), default=None)
    service_slug = request.GET.get("service", "")
    service = next((s for s in services if s.slug == service_slug), None)
    start, end, period = period_from(request.GET, now)

    figures = rows = page = shown = None
    if environment is not None:
        seen = visible_deployments(request, Deployment.objects.all())
        figures = delivery.delivery_figures(environment, start, end, service, among=seen)
        qs = visible_deployments(request).filter(
            target__environment=environment, created_at__gte=start, created_at__lt=end
        )
        if service is not None:
            qs = qs.filter(target__service=service)
        rate = figures.failure_rate
        shown = {
            "failure_rate": f"{100 * rate:.1f}".removesuffix(".0") if rate is not None else "",
            "restore": span(figures.median_restore),
            "lead": span(figures.median_lead),
        }
        page = Paginator(qs, PAGE_SIZE).get_page(request.GET.get("page"))
        notes = delivery.outcome_notes(list(page))
        rows = [
            {"d": d, "duration": span(delivery.duration(d, now)), "note": notes.get(d.pk, "")}
            for d in page
        ]
    filters = {
        "service": service.slug if service else "",
        "environment": environment.slug if environment else "",
        **period,
    }
    return render(
        request,
        "releases/history.html",
        {
            "environment": environment,
            "service": service,
            "environments": environments,
            "services": services,
            "is_production": environment is not None
            and environment == max(environments, key=lambda e: (e.order, e.slug)),
            "figures": figures,
            "shown": shown,
            "rows": rows,
            "page": page,
            "start": start,
            "end": end,
            "filters": filters,
            "periods": PERIODS,
            "query": urlencode({k: v for k, v in filters.items() if v}),
        },
    )
