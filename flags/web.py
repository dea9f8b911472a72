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

from flags import actions, analysis, experiments, governance, plans, stale
from flags.models import (
    EXPECTED_LIFETIME_DAYS,
    EvaluationCount,
    Experiment,
    Flag,
    FlagSetting,
    RolloutPlan,
)
from releases.actors import Actor
from releases.errors import DomainError, NotFound
from releases.models import AuditEvent, Channel, Deployment, Environment, State
from strategies.spec import describe_steps

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


SERIES_COLOURS = 6  # .line-v0 .. .line-v5 (switchyard.css), then they repeat


def evaluation_chart(flag: Flag, since, now) -> dict:
    """Evaluations per minute and variant, per environment, for the page's chart
    (static/js/flag-evaluations.js): ``{"start", "now", "environments": [{"environment",
    "series": [{"name", "css", "total", "points": [[unix s, n], ...]}]}]}``. A boolean flag's
    series are ``on`` and ``off``; a multivariate one's its variants (and ``off``: the
    evaluations that served no variant). A minute with no count for a series is 0."""
    rows = (
        EvaluationCount.objects.filter(flag=flag, minute__gte=since)
        .select_related("environment")
        .order_by("environment__order", "minute")
    )
    by_env: dict[str, dict[str, dict[int, int]]] = {}
    for r in rows:
        t = int(r.minute.timestamp())
        series = by_env.setdefault(r.environment.slug, {})
        if r.variants:
            for name, n in r.variants.items():
                series.setdefault(name, {})[t] = series.get(name, {}).get(t, 0) + int(n)
            served = sum(int(n) for n in r.variants.values())
            off = r.yes + r.no - served
            if off > 0:
                series.setdefault("off", {})[t] = off
        else:
            series.setdefault("on", {})[t] = r.yes
            series.setdefault("off", {})[t] = r.no
    end = int(now.timestamp()) // 60 * 60
    firsts = [min(c) for series in by_env.values() for c in series.values() if c]
    start = min(firsts, default=int(since.timestamp()) // 60 * 60)
    environments = []
    for slug, series in by_env.items():
        names = sorted(series, key=lambda n: (n == "off", n))
        out = []
        for i, name in enumerate(names):
            counts = series[name]
            first = min(counts)
            points = [[t, counts.get(t, 0)] for t in range(first, end + 60, 60)]
            out.append(
                {
                    "name": name,
                    "css": f"v{i % SERIES_COLOURS}",
                    "total": sum(counts.values()),
                    "points": points,
                }
            )
        environments.append({"environment": slug, "series": out})
    return {"start": start, "now": end + 60, "environments": environments}


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
    latest = {}
    for plan in RolloutPlan.objects.filter(flag=flag).order_by("id"):  # the latest wins
        latest[plan.environment_id] = plan
    tests = {}
    for test in Experiment.objects.filter(flag=flag).order_by("id"):  # the latest wins
        tests[test.environment_id] = test
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
                "plan": latest.get(env.pk),
                "timeline": timeline(latest.get(env.pk)),
                "analysis": analysis.summary(latest.get(env.pk)),
                "experiment": tests.get(env.pk),
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
            "chart": evaluation_chart(flag, timezone.now() - timedelta(hours=24), timezone.now()),
            "history": history,
            "stale": next((f["reasons"] for f in stale.report() if f["key"] == flag.key), None),
        },
    )


def _percent(value, signed=False) -> str:
    if value is None:
        return "?"
    text = f"{value * 100:+.2f} %" if signed else f"{value * 100:.2f} %"
    return text.replace("-", "\u2212")


def _hours(hours) -> str:
    if hours is None:
        return "more than 90 days"
    if hours < 48:
        return f"about {hours} h"
    return f"about {round(hours / 24)} days"


def _readable(result: dict) -> dict:
    """The result with the figures as the page shows them."""
    for v in result["variants"]:
        v["rate_text"] = _percent(v["rate"]) if v["rate"] is not None else "no exposures"
        v["interval_text"] = (
            f"{_percent(v['interval'][0])} to {_percent(v['interval'][1])}" if v["interval"] else ""
        )
        if not v["control"]:
            low, high = v["lift_interval"]
            v["lift_text"] = _percent(v["lift"], signed=True) if v["lift"] is not None else "?"
            low_text = (
                "below " + _percent(v["lift_at_grid_ends"][0], True)
                if low is None
                else _percent(low, True)
            )
            high_text = (
                "above " + _percent(v["lift_at_grid_ends"][1], True)
                if high is None
                else _percent(high, True)
            )
            v["lift_interval_text"] = f"{low_text} to {high_text}"
            v["needed_text"] = _hours(v["hours_needed"])
            v["needed_mde_text"] = _hours(v["hours_needed_at_mde"])
    return result


@login_required
def experiment_page(request, key: str, env: str):
    """An experiment's result: rates with intervals, the lift, the sample-ratio check, the
    sequential verdict and the time still needed at today's traffic."""
    _visible(request)
    flag = Flag.objects.filter(key=key).first()
    environment = Environment.objects.filter(slug=env).first()
    row = experiments.open_or_latest(flag, environment) if flag and environment else None
    if row is None:
        raise Http404(f"{key} has no experiment in {env}.")
    return render(
        request,
        "flags/experiment.html",
        {"flag": flag, "environment": environment, "r": _readable(experiments.result(row))},
    )


PLAN_MOVES = {"promote", "step-back", "abort"}


@login_required
@require_POST
def plan_button(request, key: str, env: str, move: str):
    """Promote, step back or abort the open rollout plan (one click, through ``flags.plans``)."""
    if move not in PLAN_MOVES:
        raise Http404("No such move.")
    actor = Actor.from_request(request, channel=Channel.UI)
    try:
        plan = plans.open_plan(key, env)
    except NotFound as exc:
        raise Http404(exc.message) from exc
    reason = request.POST.get("reason", "")[:300]
    try:
        if move == "promote":
            plans.promote(actor, plan)
        elif move == "step-back":
            plans.step_back(actor, plan, reason)
        else:
            plans.abort(actor, plan, reason)
        messages.success(request, f"{key} in {env}: plan {move} done.")
    except DomainError as exc:
        messages.error(request, exc.message)
    return redirect("flag", key=key)


FAILED_DEPLOYMENT = (State.FAILED, State.ROLLED_BACK, State.ABORTED, State.REJECTED)


def _deploy_steps(plan: RolloutPlan, where: str) -> list[dict]:
    """The deploy step of a plan drawn as its deployment's canary steps (``where``: the deploy
    step's own place in the plan)."""
    d = (
        Deployment.objects.select_related("target__service", "release")
        .filter(pk=plan.deployment_id)
        .first()
    )
    if d is None:
        return [{"label": "deploy (the deployment is gone)", "notes": "", "where": where}]
    name = f"deploy {d.target.service.slug} {d.release.version}"
    try:
        words = describe_steps(d.strategy)
    except (KeyError, TypeError, ValueError):
        words = []
    words = words or [d.strategy.get("kind", "deploy")]
    out = []
    for j, word in enumerate(words):
        if d.state == State.SUCCEEDED:
            at = "done"
        elif j < d.step_index:
            at = "done"
        elif j == d.step_index:
            at = "failed" if d.state in FAILED_DEPLOYMENT else "current"
        else:
            at = "next"
        notes = d.state.replace("_", " ") if at in ("current", "failed") else ""
        out.append({"label": f"{name}: {word}", "notes": notes, "where": at, "deployment": d.pk})
    return out


def timeline(plan: RolloutPlan | None) -> list[dict]:
    """The plan's steps as the page draws them: done, current, next (or failed: the
    deployment's step where it failed); a plan that deploys first starts with the deployment's
    canary steps (``phase`` "deploy"), then the flag's (``phase`` "release")."""
    if plan is None:
        return []
    out = []
    for i, step in enumerate(plan.steps):
        where = "done" if i < plan.step_index else "current" if i == plan.step_index else "next"
        if step.get("deploy"):
            out.extend({**s, "phase": "deploy"} for s in _deploy_steps(plan, where))
            continue
        if step.get("cleanup"):
            label = "cleanup: remove the flag from the code"
        elif step.get("segment"):
            label = f"segment {step['segment_name']}"
        else:
            label = f"{step['percent']} %"
        notes = []
        if step.get("gate") == "analysis":
            notes.append(f"gate: analysis {step['analysis']['template']}")
        elif step.get("gate"):
            notes.append(f"gate: {step['gate']} verdict")
        if step.get("pause"):
            notes.append(
                f"hold {step['pause'] // 60} min"
                if step["pause"] < 7200
                else f"hold {step['pause'] // 3600} h"
            )
        if plan.state == "completed" and i == plan.step_index:
            where = "done"
        out.append({"label": label, "notes": ", ".join(notes), "where": where, "phase": "release"})
    return out


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
