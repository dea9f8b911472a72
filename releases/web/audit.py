"""The audit log: every action from every channel, filtered by actor, service, environment, action
and time, newest first; and the same selection exported as JSON lines (one object per line).

An audit event names its object by type and id, so "the events of a service" are those about the
service itself, its releases, its targets and its deployments (and likewise for an environment).
Times in the filter are UTC.
"""

from __future__ import annotations

import json

from asgiref.sync import sync_to_async
from django.contrib.auth.decorators import login_required
from django.db.models import CharField, Q
from django.db.models.functions import Cast
from django.http import Http404, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone

from releases.models import AuditEvent, Deployment, Environment, Release, Service, Target
from releases.web.common import list_context, parse_moment, refusal, visible, visible_deployments

PAGE_SIZE = 100
EXPORT_CHUNK = 2000


def _ids(qs):
    """The primary keys of ``qs`` as text, for comparing with ``AuditEvent.object_id``."""
    return qs.annotate(text_id=Cast("pk", output_field=CharField())).values("text_id")


def _about(object_type: str, qs) -> Q:
    return Q(object_type=object_type, object_id__in=_ids(qs))


def seen_by(request, qs):
    """Audit events a user who is not a superuser may read: those about the services,
    environments, releases, targets and deployments they may see."""
    if request.user.is_superuser:
        return qs
    services = visible(request, Service.objects.all(), env=None, service="pk")
    environments = visible(request, Environment.objects.all(), env="pk", service=None)
    return qs.filter(
        _about("service", services)
        | _about("environment", environments)
        | _about("release", visible(request, Release.objects.all(), env=None, service="service"))
        | _about(
            "target", visible(request, Target.objects.all(), env="environment", service="service")
        )
        | _about("deployment", visible_deployments(request, Deployment.objects.all()))
    )


def filtered(request, query) -> tuple[object, dict]:
    """The AuditEvents the user may read matching ``?actor=&service=&environment=&action=&from=
    &to=``, and the filter values to put back in the form."""
    filters = {
        key: (query.get(key) or "").strip()
        for key in ("actor", "service", "environment", "action", "from", "to")
    }
    qs = seen_by(request, AuditEvent.objects.all())
    if filters["actor"]:
        qs = qs.filter(actor_name__icontains=filters["actor"])
    if filters["action"]:
        qs = qs.filter(action=filters["action"])
    if filters["service"]:
        s = Service.objects.filter(slug=filters["service"])
        qs = qs.filter(
            _about("service", s)
            | _about("release", Release.objects.filter(service__in=s))
            | _about("target", Target.objects.filter(service__in=s))
            | _about("deployment", Deployment.objects.filter(target__service__in=s))
        )
    if filters["environment"]:
        e = Environment.objects.filter(slug=filters["environment"])
        qs = qs.filter(
            _about("environment", e)
            | _about("target", Target.objects.filter(environment__in=e))
            | _about("deployment", Deployment.objects.filter(target__environment__in=e))
        )
    start, end = parse_moment(filters["from"]), parse_moment(filters["to"])
    if start:
        qs = qs.filter(created_at__gte=start)
    if end:
        qs = qs.filter(created_at__lte=end)
    return qs.order_by("-id"), filters


def audit_dict(a: AuditEvent) -> dict:
    return {
        "id": a.pk,
        "time": a.created_at.isoformat(),
        "actor": a.actor_name,
        "channel": a.channel,
        "action": a.action,
        "object_type": a.object_type,
        "object_id": a.object_id,
        "object": a.object_repr,
        "data": a.data,
        "source_address": a.source_address,
    }


def _check(request) -> None:
    if refusal(request, "audit.view"):
        raise Http404("No such page.")


@login_required
def audit(request):
    _check(request)
    qs, filters = filtered(request, request.GET)
    return render(
        request,
        "releases/audit.html",
        {
            **list_context(request, qs, filters, PAGE_SIZE),
            "actions": AuditEvent.objects.order_by("action")
            .values_list("action", flat=True)
            .distinct(),
        },
    )


def _page(qs, after: int) -> tuple[str, int, int]:
    """The next ``EXPORT_CHUNK`` rows of ``qs`` after id ``after`` as JSON lines: (text, last id,
    rows). Keyset pagination: each page is a query of its own, so no cursor or transaction stays
    open while the client reads."""
    page = list(qs.filter(pk__gt=after).order_by("id")[:EXPORT_CHUNK])
    text = "".join(
        json.dumps(audit_dict(a), separators=(",", ":"), sort_keys=True) + "\n" for a in page
    )
    return text, (page[-1].pk if page else after), len(page)


@login_required
def audit_export(request):
    """The filtered audit log as JSON lines, streamed (oldest first, so it appends cleanly).

    The body is an async generator: under ASGI Django sends each page as it is read, where a sync
    iterator would first be consumed whole into a list (``StreamingHttpResponse`` does so to serve
    a sync iterator asynchronously), i.e. the whole export in memory. One page (``EXPORT_CHUNK``
    rows) is in memory at a time."""
    _check(request)
    qs, _ = filtered(request, request.GET)

    async def lines():
        after = 0
        while True:
            text, after, n = await sync_to_async(_page)(qs, after)
            if text:
                yield text
            if n < EXPORT_CHUNK:
                return

    stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
    response = StreamingHttpResponse(lines(), content_type="application/jsonl; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="switchyard-audit-{stamp}.jsonl"'
    return response
