"""Dashboard pages for flags: the list (type, state per environment, staleness) and a flag's
page (strategies, variants, evaluation counts per minute, history), with the kill switch and
on/off buttons. Views read; every change goes through ``flags.actions``.
"""

from __future__ import annotations

from datetime import timedelta

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Q
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from flags import actions, governance, stale
from flags.models import EXPECTED_LIFETIME_DAYS, EvaluationCount, Flag, FlagSetting, RolloutPlan
from releases.actors import Actor
from releases.errors import DomainError, NotFound
from releases.models import AuditEvent, Channel, Environment

BUTTONS = {"enable", "disable", "kill", "restore"}


def _visible(request) -> None:
    try:
        governance.check(request.user, "flag.view")
    except DomainError as exc:
        raise Http404(exc.message) from exc


@login_required
def flag_list(request):
    _visible(request)
    environments = list(Environment.objects.order_by("order"))
    settings = {(s.flag_id, s.environment_id): s for s in FlagSetting.objects.all()}
    stale_keys = {f["key"]: f["reasons"] for f in stale.report()}
    rows = [
        {
            "flag": flag,
            "cells": [settings.get((flag.pk, env.pk)) for env in environments],
            "stale": stale_keys.get(flag.key),
            "lifetime": EXPECTED_LIFETIME_DAYS.get(flag.flag_type),
        }
        for flag in Flag.objects.filter(archived_at__isnull=True)
    ]
    return render(request, "flags/list.html", {"rows": rows, "environments": environments})


def _counts(flag: Flag, since) -> list[dict]:
    rows = (
        EvaluationCount.objects.filter(flag=flag, minute__gte=since)
        .select_related("environment")
        .order_by("-minute")[:60]
    )
    return [
        {
            "minute": r.minute,
            "environment": r.environment.slug,
            "yes": r.yes,
            "no": r.no,
            "variants": r.variants,
        }
        for r in rows
    ]


@login_required
def flag_detail(request, key: str):
    _visible(request)
    flag = Flag.objects.filter(key=key).first()
    if flag is None:
        raise Http404(f"There is no flag {key!r}.")
    settings = {s.environment_id: s for s in FlagSetting.objects.filter(flag=flag)}
    plans = {}
    for plan in RolloutPlan.objects.filter(flag=flag).order_by("id"):  # the latest wins
        plans[plan.environment_id] = plan
    environments = []
    for env in Environment.objects.order_by("order"):
        try:
            governance.check(request.user, "flag.change", env)
            may_change = True
        except DomainError:
            may_change = False
        environments.append(
            {
                "environment": env,
                "setting": settings.get(env.pk),
                "may_change": may_change,
                "plan": plans.get(env.pk),
            }
        )
    setting_ids = [str(s.pk) for s in settings.values()]
    history = AuditEvent.objects.filter(
        Q(object_type="flag", object_id=str(flag.pk))
        | Q(object_type="flagsetting", object_id__in=setting_ids)
    ).order_by("-id")[:50]
    return render(
        request,
        "flags/flag.html",
        {
            "flag": flag,
            "environments": environments,
            "counts": _counts(flag, timezone.now() - timedelta(hours=24)),
            "history": history,
            "stale": next((f["reasons"] for f in stale.report() if f["key"] == flag.key), None),
        },
    )


@login_required
@require_POST
def flag_button(request, key: str, env: str, button: str):
    if button not in BUTTONS:
        raise Http404("No such action.")
    actor = Actor.from_request(request, channel=Channel.UI)
    try:
        flag = actions.flag_by_key(key)
        environment = Environment.objects.filter(slug=env).first()
        if environment is None:
            raise NotFound(f"There is no environment {env!r}.")
        if button == "kill":
            actions.kill(actor, flag, environment, request.POST.get("reason", "")[:300])
        elif button == "restore":
            actions.restore(actor, flag, environment)
        else:
            actions.set_enabled(actor, flag, environment, button == "enable")
        messages.success(request, f"{key} in {env}: {button} done.")
    except NotFound as exc:
        raise Http404(exc.message) from exc
    except DomainError as exc:
        messages.error(request, exc.message)
    return redirect("flag", key=key)
