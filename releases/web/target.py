"""One target (a service in an environment): what runs there, its slots as last observed, and its
rollback window -- what it holds (the cost: instances of the previous release kept warm at 0%
traffic), until when, what a rollback does now, and the button that ends it early
(``actions.end_window``: role-checked and audited like every command)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from releases import actions
from releases.actors import Actor
from releases.errors import DomainError
from releases.live.presenters import window_dict
from releases.models import Channel, Target
from releases.web.common import refusal, visible_deployments

RECENT = 10
REASON_MAX = 500


def _target(request, service: str, env: str) -> Target:
    t = get_object_or_404(
        Target.objects.select_related("service", "environment", "stable_release"),
        service__slug=service,
        environment__slug=env,
    )
    if refusal(request, "target.view", t):
        raise Http404("No such target.")
    return t


@login_required
def target_page(request, service: str, env: str):
    t = _target(request, service, env)
    window = window_dict(t)
    can_end = window["open"] and not refusal(request, "deployment.end_window", t)
    recent = visible_deployments(request).filter(target=t).order_by("-id")[:RECENT]
    slots = [{"name": name, **view} for name, view in sorted((t.observed or {}).items())]
    return render(
        request,
        "releases/target.html",
        {
            "target": t,
            "window": window,
            "can_end": can_end,
            "end_refusal": refusal(request, "deployment.end_window", t) if window["open"] else "",
            "slots": slots,
            "deployments": recent,
        },
    )


@require_POST
@login_required
def target_end_window(request, service: str, env: str):
    t = _target(request, service, env)
    window = window_dict(t)
    if not window["open"]:
        messages.error(request, "There is no rollback window open on this target.")
        return redirect("target", service=service, env=env)
    reason = request.POST.get("reason", "").strip()[:REASON_MAX]
    try:
        actions.end_window(
            Actor.from_request(request, channel=Channel.UI), window["deployment"], reason=reason
        )
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(
            request, f"Rollback window ended: slot {window['slot']} ({window['version']}) retires."
        )
    return redirect("target", service=service, env=env)
