"""The dashboard: server-rendered pages that ``static/js/live.js`` keeps live over WebSockets.

Views only read; every state change goes through ``releases.commands`` (the action endpoint).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.core.paginator import Paginator
from django.db.models import F, OuterRef, Subquery
from django.http import Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from releases import commands
from releases.actors import Actor
from releases.errors import DomainError, NotFound
from releases.models import (
    ACTIVE_STATES,
    Channel,
    Deployment,
    Environment,
    Release,
    Service,
    State,
    Target,
)
from releases.serializers import deployment_dict
from strategies.spec import describe_steps

RECENT_DEPLOYMENTS = 12
EVENT_LIMIT = 100
PAGE_SIZE = 50

# the operator commands, in the order their buttons appear, with their labels
ACTIONS = {
    "promote": "Promote",
    "pause": "Pause",
    "resume": "Resume",
    "abort": "Abort",
    "rollback": "Roll back",
}
TAKES_REASON = ("abort", "rollback")


def _deployments():
    return Deployment.objects.select_related(
        "target__service", "target__environment", "release", "from_release", "created_by"
    )


def _words(value: str) -> str:
    return str(value).replace("_", " ")


def _one_of(states) -> str:
    names = [_words(s) for s in states]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


# --- the board --------------------------------------------------------------------------------


@dataclass
class Cell:
    target: Target
    active: Deployment | None
    shipped: Deployment | None  # the last succeeded deployment


@login_required
def board(request):
    """Services x environments: stable version, who shipped it, and any active deployment.

    A fixed number of queries whatever the size of the matrix."""
    environments = list(Environment.objects.all())
    services = list(Service.objects.all())
    last_success = (
        Deployment.objects.filter(target=OuterRef("pk"), state=State.SUCCEEDED)
        .order_by(F("finished_at").desc(nulls_last=True), "-id")
        .values("pk")[:1]
    )
    targets = list(
        Target.objects.select_related("service", "environment", "stable_release").annotate(
            last_success_id=Subquery(last_success)
        )
    )
    active = {d.target_id: d for d in _deployments().filter(state__in=ACTIVE_STATES)}
    shipped_ids = [t.last_success_id for t in targets if t.last_success_id]
    shipped = {
        d.pk: d for d in Deployment.objects.select_related("created_by").filter(pk__in=shipped_ids)
    }
    cells = {
        (t.service_id, t.environment_id): Cell(
            target=t, active=active.get(t.pk), shipped=shipped.get(t.last_success_id)
        )
        for t in targets
    }
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
            "recent": _deployments()[:RECENT_DEPLOYMENTS],
        },
    )


# --- one deployment ---------------------------------------------------------------------------


@dataclass
class Action:
    name: str
    label: str
    allowed: bool
    reason: str  # why it is disabled ("" when allowed)
    confirm: str  # what will happen, asked before doing it


def _confirm_text(d: Deployment, action: str) -> str:
    service, env = d.target.service.slug, d.target.environment.slug
    version = d.release.version
    previous = d.from_release.version if d.from_release_id else None
    if action == "promote":
        return f"Promote {service} {version} in {env} to the next step?"
    if action == "pause":
        return f"Pause the rollout of {service} {version} in {env}?"
    if action == "resume":
        return f"Resume the rollout of {service} {version} in {env}?"
    back = f"back to {previous}" if previous else "back to the stable release"
    if action == "abort":
        return f"Abort the rollout of {service} {version} in {env} and send all traffic {back}?"
    if previous is None:
        return f"Roll back {service} in {env}? ({version} was its first release.)"
    return f"Roll back {service} in {env} to {previous}?"


def _actions(d: Deployment) -> list[Action]:
    out = []
    for name, label in ACTIONS.items():
        states = commands.ALLOWED[name]
        allowed = d.state in states
        reason = (
            ""
            if allowed
            else f"{label} needs the deployment to be {_one_of(states)}; it is {_words(d.state)}."
        )
        out.append(Action(name, label, allowed, reason, _confirm_text(d, name)))
    return out


def _slots(observed: dict) -> list[dict]:
    """Target.observed as rows, the stable role first."""
    order = {"stable": 0, "canary": 1}
    rows = [{"name": name, **(slot or {})} for name, slot in (observed or {}).items()]
    return sorted(rows, key=lambda s: (order.get(s.get("role", ""), 2), s["name"]))


def _steps(spec: dict) -> list[str]:
    try:
        return describe_steps(spec)
    except (KeyError, TypeError, ValueError):  # an old or unknown kind: show no plan
        return []


@login_required
def deployment(request, pk: int):
    d = get_object_or_404(_deployments(), pk=pk)
    events = list(reversed(d.events.order_by("-id")[:EVENT_LIMIT]))
    weights = d.weights or {}
    return render(
        request,
        "releases/deployment.html",
        {
            "d": d,
            "state_label": _words(d.state),
            "target": d.target,
            "slots": _slots(d.target.observed),
            "steps": _steps(d.strategy),
            "events": events,
            "last_event_id": events[-1].pk if events else 0,
            "weights": {"stable": weights.get("stable", 0), "canary": weights.get("canary", 0)},
            "actions": _actions(d),
            "allowed_json": json.dumps(
                {name: [str(s) for s in states] for name, states in commands.ALLOWED.items()}
            ),
            "labels_json": json.dumps(ACTIONS),
        },
    )


@require_POST
def deployment_action(request, pk: int, action: str):
    """POST /deployments/<id>/<action>/: run the command; JSON for fetch, else redirect back."""
    if action not in ACTIONS:
        raise Http404(f"No such action: {action}")
    wants_json = "application/json" in request.headers.get("Accept", "")
    if not request.user.is_authenticated:
        if wants_json:
            return JsonResponse(
                {"code": "unauthenticated", "message": "Your session has ended: sign in again."},
                status=401,
            )
        return redirect_to_login(request.get_full_path())
    actor = Actor.from_request(request, channel=Channel.UI)
    command = getattr(commands, action)
    kwargs = {}
    if action in TAKES_REASON:
        kwargs["reason"] = request.POST.get("reason", "").strip()[:500]
    try:
        result = command(actor, pk, **kwargs)
    except NotFound as exc:
        if wants_json:
            return JsonResponse({"code": exc.code, "message": exc.message}, status=404)
        raise Http404(exc.message) from None
    except DomainError as exc:
        if wants_json:
            return JsonResponse(
                {"code": exc.code, "message": exc.message, "details": exc.details},
                status=exc.status,
            )
        messages.error(request, exc.message)
        return redirect("deployment", pk)
    if result.pk != pk:  # rolling back a succeeded deployment starts a new one
        done = f"Started deployment #{result.pk} to roll back to {result.release.version}."
    else:
        done = f"{ACTIONS[action]}: done ({_words(result.state)})."
    if wants_json:
        return JsonResponse(
            {
                "message": done,
                "deployment": deployment_dict(result),
                "redirect": reverse("deployment", args=[result.pk]) if result.pk != pk else None,
            }
        )
    messages.success(request, done)
    return redirect("deployment", result.pk)


# --- lists ------------------------------------------------------------------------------------


@login_required
def deployment_list(request):
    """Every deployment, newest first, filtered by ?service=&environment=&state=."""
    filters = {
        "service": request.GET.get("service", ""),
        "environment": request.GET.get("environment", ""),
        "state": request.GET.get("state", ""),
    }
    qs = _deployments()
    if filters["service"]:
        qs = qs.filter(target__service__slug=filters["service"])
    if filters["environment"]:
        qs = qs.filter(target__environment__slug=filters["environment"])
    if filters["state"] == "active":
        qs = qs.filter(state__in=ACTIVE_STATES)
    elif filters["state"]:
        qs = qs.filter(state=filters["state"])
    page = Paginator(qs, PAGE_SIZE).get_page(request.GET.get("page"))
    query = urlencode({k: v for k, v in filters.items() if v})
    return render(
        request,
        "releases/deployment_list.html",
        {
            "page": page,
            "filters": filters,
            "query": query,
            "services": Service.objects.all(),
            "environments": Environment.objects.all(),
            "states": [("active", "any active")] + [(s.value, _words(s.value)) for s in State],
        },
    )


@login_required
def release(request, service: str, version: str):
    r = get_object_or_404(
        Release.objects.select_related("service", "created_by"),
        service__slug=service,
        version=version,
    )
    return render(
        request,
        "releases/release.html",
        {
            "release": r,
            "artifact": json.dumps(r.artifact, indent=2, sort_keys=True),
            "live_on": Target.objects.filter(stable_release=r).select_related("environment"),
            "deployments": _deployments().filter(release=r)[:20],
        },
    )
