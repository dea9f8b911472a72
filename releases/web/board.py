"""The board: services (rows) x environments (columns, in promotion order).

Each cell shows the release live there, how long ago and by whom it was shipped, and any active
deployment (strategy, step, weight); a cell is red when a person is needed (paused, waiting for a
promotion or an approval), while rolling back, and when the last deployment there failed. Filters
by team, service and environment are plain GET parameters (so a filtered board is a link).
A fixed number of queries whatever the size of the matrix (``serializers.load_cells``).
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.urls import reverse

from releases.live.presenters import load_cells
from releases.models import Environment, Service, Target
from releases.web.common import visible, visible_deployments

RECENT_DEPLOYMENTS = 12


def paths() -> dict[str, str]:
    """URL prefixes for the cells' links (one reverse() each per page, not one per cell)."""
    return {
        "deployments": reverse("deployments"),
        "services": reverse("release", args=["x", "y"]).split("x/releases/")[0],
        "history": reverse("history"),
    }


@login_required
def board(request):
    filters = {
        "team": request.GET.get("team", ""),
        "service": request.GET.get("service", ""),
        "environment": request.GET.get("environment", ""),
    }
    all_services = list(visible(request, Service.objects.all(), env=None, service="pk"))
    all_environments = list(visible(request, Environment.objects.all(), env="pk", service=None))
    services = [
        s
        for s in all_services
        if (not filters["team"] or s.team == filters["team"])
        and (not filters["service"] or s.slug == filters["service"])
    ]
    environments = [
        e
        for e in all_environments
        if not filters["environment"] or e.slug == filters["environment"]
    ]
    filtered = any(filters.values())
    targets = visible(request, Target.objects.all(), env="environment", service="service")
    recent = visible_deployments(request)
    if filtered:
        targets = targets.filter(service__in=services, environment__in=environments)
        recent = recent.filter(target__service__in=services, target__environment__in=environments)
    cells = {(c.target.service_id, c.target.environment_id): c for c in load_cells(targets)}
    rows = [
        {"service": s, "cells": [(e, cells.get((s.pk, e.pk))) for e in environments]}
        for s in services
    ]
    return render(
        request,
        "releases/board.html",
        {
            "environments": environments,
            "rows": rows,
            # newest first by id (creation order): the primary key's index, no sort of the table
            "recent": recent.order_by("-id")[:RECENT_DEPLOYMENTS],
            "paths": paths(),
            "filters": filters,
            "filtered": filtered,
            "query": urlencode({k: v for k, v in filters.items() if v}),
            "teams": sorted({s.team for s in all_services if s.team}),
            "all_services": all_services,
            "all_environments": all_environments,
        },
    )
