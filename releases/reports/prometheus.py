"""Switchyard's own metrics at ``/metrics`` (Prometheus text format 0.0.4), computed from the
database at scrape time with a fixed number of aggregate queries -- nothing is kept in memory, so
every web process answers the same and a restart loses nothing:

- ``switchyard_deployments_total{service, environment, outcome}``: finished deployments by how
  they ended (succeeded, failed, rolled_back, aborted, rejected), and
  ``switchyard_deployments_active{service, environment, state}`` for those under way;
- ``switchyard_deployment_duration_seconds{service, environment, outcome}``: a histogram of
  started -> finished;
- ``switchyard_canary_weight{service, environment}``: the share of traffic (0-100) on the new
  release of the target's active deployment, 0 when none;
- ``switchyard_analysis_runs_total{template, phase}``: analysis verdicts (passed, failed,
  error, inconclusive) and those running;
- ``switchyard_rollbacks_total{service, environment, reason}``: deployments that went back to
  the old release, by why: ``analysis`` (a failed or errored analysis), ``failure`` (health, a
  deadline, a permanent integration error), ``operator`` (a person rolled back or aborted).

Set ``SWITCHYARD_METRICS_TOKEN`` to require ``Authorization: Bearer <it>`` from the scraper.
"""

from __future__ import annotations

import hmac
import os
from datetime import timedelta

from django.conf import settings
from django.db.models import Count, DurationField, ExpressionWrapper, F, Q, Sum
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET

from releases.models import ACTIVE_STATES, TERMINAL_STATES, Deployment, State, Target
from releases.models.analysis import AnalysisRun

DURATION_BUCKETS = (10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
ROLLED_BACK = (State.ROLLED_BACK, State.ABORTED, State.FAILED)


def _escape(value: str) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(**labels) -> str:
    return ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())


def _header(lines: list[str], name: str, kind: str, text: str) -> None:
    lines.append(f"# HELP {name} {text}")
    lines.append(f"# TYPE {name} {kind}")


def render() -> str:
    lines: list[str] = []
    where = ("target__service__slug", "target__environment__slug")

    _header(lines, "switchyard_deployments_total", "counter", "Finished deployments by outcome.")
    finished = (
        Deployment.objects.filter(state__in=TERMINAL_STATES)
        .values(*where, "state")
        .annotate(n=Count("id"))
        .order_by(*where, "state")
    )
    for row in finished:
        labels = _labels(service=row[where[0]], environment=row[where[1]], outcome=row["state"])
        lines.append(f"switchyard_deployments_total{{{labels}}} {row['n']}")

    _header(lines, "switchyard_deployments_active", "gauge", "Deployments under way by state.")
    active = (
        Deployment.objects.filter(state__in=ACTIVE_STATES)
        .values(*where, "state")
        .annotate(n=Count("id"))
        .order_by(*where, "state")
    )
    for row in active:
        labels = _labels(service=row[where[0]], environment=row[where[1]], state=row["state"])
        lines.append(f"switchyard_deployments_active{{{labels}}} {row['n']}")

    _duration(lines, where)

    _header(
        lines,
        "switchyard_canary_weight",
        "gauge",
        "Percent of traffic on the new release of the target's active deployment.",
    )
    weights = {
        d.target_id: (d.weights or {}).get("canary", 0)
        for d in Deployment.objects.filter(state__in=ACTIVE_STATES).only("target_id", "weights")
    }
    for target in Target.objects.select_related("service", "environment").order_by("pk"):
        labels = _labels(service=target.service.slug, environment=target.environment.slug)
        weight = weights.get(target.pk, 0)
        lines.append(f"switchyard_canary_weight{{{labels}}} {float(weight or 0):g}")

    _header(lines, "switchyard_analysis_runs_total", "counter", "Analysis runs by verdict.")
    runs = (
        AnalysisRun.objects.values("name", "phase")
        .annotate(n=Count("id"))
        .order_by("name", "phase")
    )
    for row in runs:
        labels = _labels(template=row["name"], phase=row["phase"])
        lines.append(f"switchyard_analysis_runs_total{{{labels}}} {row['n']}")

    _header(lines, "switchyard_rollbacks_total", "counter", "Rollbacks by reason.")
    rollbacks = (
        Deployment.objects.filter(state__in=ROLLED_BACK)
        .annotate(
            by_analysis=Count(
                "analysis_runs", filter=Q(analysis_runs__phase__in=("failed", "error"))
            )
        )
        .values(*where, "state", "by_analysis")
    )
    counts: dict[tuple[str, str, str], int] = {}
    for row in rollbacks:
        if row["by_analysis"]:
            reason = "analysis"
        elif row["state"] == State.FAILED:
            reason = "failure"
        else:
            reason = "operator"
        key = (row[where[0]], row[where[1]], reason)
        counts[key] = counts.get(key, 0) + 1
    for (service, environment, reason), n in sorted(counts.items()):
        labels = _labels(service=service, environment=environment, reason=reason)
        lines.append(f"switchyard_rollbacks_total{{{labels}}} {n}")
    return "\n".join(lines) + "\n"


def _duration(lines: list[str], where: tuple[str, str]) -> None:
    name = "switchyard_deployment_duration_seconds"
    _header(lines, name, "histogram", "Time from a deployment's start to its end.")
    duration = ExpressionWrapper(F("finished_at") - F("started_at"), output_field=DurationField())
    buckets = {
        f"le_{i}": Count("id", filter=Q(duration__lte=timedelta(seconds=b)))
        for i, b in enumerate(DURATION_BUCKETS)
    }
    rows = (
        Deployment.objects.filter(
            state__in=TERMINAL_STATES, started_at__isnull=False, finished_at__isnull=False
        )
        .annotate(duration=duration)
        .values(*where, "state")
        .annotate(n=Count("id"), **buckets)
        .order_by(*where, "state")
    )
    sums = {
        (r[where[0]], r[where[1]], r["state"]): r["duration"]
        for r in Deployment.objects.filter(
            state__in=TERMINAL_STATES, started_at__isnull=False, finished_at__isnull=False
        )
        .annotate(d=duration)
        .values(*where, "state")
        .annotate(duration=Sum("d", output_field=DurationField()))
        .order_by()
    }
    for row in rows:
        base = _labels(service=row[where[0]], environment=row[where[1]], outcome=row["state"])
        for i, bound in enumerate(DURATION_BUCKETS):
            lines.append(f'{name}_bucket{{{base},le="{bound}"}} {row[f"le_{i}"]}')
        lines.append(f'{name}_bucket{{{base},le="+Inf"}} {row["n"]}')
        total = sums.get((row[where[0]], row[where[1]], row["state"]))
        seconds = total.total_seconds() if total is not None else 0.0
        lines.append(f"{name}_sum{{{base}}} {seconds:.3f}")
        lines.append(f"{name}_count{{{base}}} {row['n']}")


def _authorised(request: HttpRequest) -> bool:
    expected = getattr(settings, "METRICS_TOKEN", "") or os.environ.get(
        "SWITCHYARD_METRICS_TOKEN", ""
    )
    if not expected:
        return True
    given = request.headers.get("Authorization", "")
    return hmac.compare_digest(given.encode(), f"Bearer {expected}".encode())


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    if not _authorised(request):
        response = HttpResponse("unauthorised\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="switchyard-metrics"'
        return response
    return HttpResponse(render(), content_type=CONTENT_TYPE)
