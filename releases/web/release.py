"""One release: what it is, where it is live, its deployments, and the "Deploy to..." form.

The form deploys to one environment at a time (``?env=<slug>`` picks it, a plain link, so it works
without JavaScript). Its strategy box is prefilled with the spec the deployment would get anyway
(``actions.resolve_strategy``: the target's, else the service's default, else the environment's,
else Switchyard's) and may be edited; it is validated by ``actions.validate_strategy``, the same
function and messages as the REST API, each error shown next to its path.
"""

from __future__ import annotations

import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from releases import actions
from releases.actors import Actor
from releases.errors import DomainError, InvalidSpec
from releases.governance import freezes
from releases.models import ACTIVE_STATES, Channel, Deployment, Release, Target
from releases.models.analysis import AnalysisTemplate
from releases.web.common import refusal, visible, visible_deployments
from releases.web.deployment import steps_of

RECENT = 20
REASON_MAX = 500

# the strategy builder's starting points, one per kind (docs/dashboard.md shows the same; a canary
# gets an analysis step with the first analysis template when there is one: static/js/builder.js)
EXAMPLES = {
    "canary": {
        "kind": "canary",
        "stable_replicas": 2,
        "steps": [
            {"set_weight": 10},
            {"pause": {"duration": "30s"}},
            {"set_weight": 50},
            {"pause": {}},
        ],
    },
    "blue_green": {
        "kind": "blue_green",
        "replicas": 2,
        "preview_replicas": 1,
        "smoke": [{"path": "/health", "status": 200}],
        "auto_promote": "30s",
        "scale_down_delay": "30s",
    },
    "rolling": {
        "kind": "rolling",
        "replicas": 4,
        "batch_size": "25%",
        "max_surge": 1,
        "max_unavailable": 0,
        "min_ready": "5s",
        "progress_deadline": "10m",
    },
    "recreate": {"kind": "recreate", "replicas": 2},
}


def _release(request, service: str, version: str) -> Release:
    r = get_object_or_404(
        Release.objects.select_related("service", "created_by"),
        service__slug=service,
        version=version,
    )
    if refusal(request, "release.view", r):
        raise Http404("No such release.")
    return r


def strategy_source(target: Target) -> str:
    """Where the prefilled strategy comes from, in words (the order of resolve_strategy)."""
    service, env = target.service, target.environment
    for label, candidate in (
        ("this target's strategy", target.strategy),
        (f"the default of the service {service.slug}", service.default_strategy),
        (f"the default of the environment {env.slug}", env.default_strategy),
    ):
        if candidate:
            return label
    return "Switchyard's default"


def _default(target: Target) -> tuple[str, list[dict]]:
    """The prefilled strategy text, and the errors of a stored default that no longer validates."""
    try:
        return json.dumps(actions.resolve_strategy(target, None), indent=2), []
    except InvalidSpec as exc:
        raw = next(
            c
            for c in (
                target.strategy,
                target.service.default_strategy,
                target.environment.default_strategy,
            )
            if c
        )
        return json.dumps(raw, indent=2), exc.details.get("errors", [])


def _places(request, r: Release) -> list[dict]:
    """Every environment the service runs in, in promotion order, as the form's tabs."""
    targets = list(
        visible(
            request, Target.objects.filter(service=r.service), env="environment", service="service"
        ).select_related("service", "environment", "stable_release")
    )
    active = {
        d.target_id: d
        for d in Deployment.objects.filter(
            target__in=targets, state__in=ACTIVE_STATES
        ).select_related("release")
    }
    places = []
    for t in sorted(targets, key=lambda t: (t.environment.order, t.environment.slug)):
        d = active.get(t.pk)
        blocked = refusal(request, "deployment.create", t)
        if not blocked and d is not None:
            blocked = (
                f"Deployment #{d.pk} ({d.release.version}, "
                f"{d.state.replace('_', ' ')}) is active in {t.environment.slug}: "
                "wait for it, or abort it first."
            )
        places.append(
            {
                "target": t,
                "env": t.environment,
                "live": t.stable_release.version if t.stable_release_id else None,
                "here": t.stable_release_id == r.pk,
                "active": d,
                "blocked": blocked,
                # governance: a freeze in force here (an admin may override it with a reason)
                "frozen": _frozen(t),
            }
        )
    return places


def _frozen(target: Target) -> str:
    active = freezes.active_freeze(target)
    return active.message if active else ""


def _chosen(places: list[dict], slug: str) -> dict | None:
    for place in places:
        if place["env"].slug == slug:
            return place
    # by default the first environment on the promotion path that does not run it yet
    return next((p for p in places if not p["here"]), places[0] if places else None)


def _page(request, r: Release, *, env: str = "", form=None, errors=None, status=200, **extra):
    places = _places(request, r)
    chosen = _chosen(places, env)
    default_text, default_errors = ("", [])
    if chosen is not None:
        default_text, default_errors = _default(chosen["target"])
    form = form or {"strategy": default_text, "reason": ""}
    context = {
        "release": r,
        "artifact": json.dumps(r.artifact, indent=2, sort_keys=True),
        "live_on": [p for p in places if p["here"]],
        "deployments": visible_deployments(request).filter(release=r)[:RECENT],
        "places": places,
        "chosen": chosen,
        "source": strategy_source(chosen["target"]) if chosen else "",
        "form": form,
        "errors": errors if errors is not None else default_errors,
        "default_invalid": bool(default_errors) and errors is None,
        "builder": {
            "examples": EXAMPLES,
            "templates": list(
                AnalysisTemplate.objects.order_by("name").values_list("name", flat=True)
            ),
            "provider": chosen["target"].provider if chosen else None,
            "validate_url": "/api/v1/strategies/validate",
            "source": strategy_source(chosen["target"]) if chosen else "",
        },
        **extra,
    }
    return render(request, "releases/release.html", context, status=status)


@login_required
def release(request, service: str, version: str):
    r = _release(request, service, version)
    return _page(request, r, env=request.GET.get("env", ""))


def parse_strategy(text: str) -> dict | None:
    """The strategy box: empty means "the default"; otherwise JSON, or InvalidSpec saying where
    it is not (in the API's error shape)."""
    if not text.strip():
        return None
    try:
        return json.loads(text)
    except ValueError as exc:
        where = f" (line {exc.lineno}, column {exc.colno})" if hasattr(exc, "lineno") else ""
        message = f"is not valid JSON: {getattr(exc, 'msg', str(exc))}{where}"
        raise InvalidSpec(
            f"The strategy {message}.", details={"errors": [{"path": "", "message": message}]}
        ) from None


@require_POST
@login_required
def deploy(request, service: str, version: str):
    """POST the "Deploy to..." form: ``environment``, ``strategy`` (JSON), ``reason``,
    ``redeploy`` (the version already live there, again), and ``check`` to only validate."""
    r = _release(request, service, version)
    env = request.POST.get("environment", "")
    form = {
        "strategy": request.POST.get("strategy", ""),
        "reason": request.POST.get("reason", "").strip()[:REASON_MAX],
    }
    target = (
        Target.objects.select_related("service", "environment", "stable_release")
        .filter(service=r.service, environment__slug=env)
        .first()
    )
    if target is None:
        return _page(
            request,
            r,
            env=env,
            form=form,
            error=f"{r.service.slug} does not run in {env or 'that environment'}.",
            status=400,
        )
    refused = refusal(request, "deployment.create", target)
    if refused:
        return _page(request, r, env=env, form=form, error=refused, status=403)
    try:
        strategy = parse_strategy(form["strategy"])
        if "check" in request.POST:
            spec = actions.resolve_strategy(target, strategy)
            return _page(
                request,
                r,
                env=env,
                form=form,
                checked={"kind": spec["kind"], "steps": steps_of(spec)},
            )
        d, _ = actions.start_deployment(
            Actor.from_request(request, channel=Channel.UI),
            service=r.service,
            environment=target.environment,
            version=r.version,
            strategy=strategy,
            reason=form["reason"],
            # governance: blank means "no override" (the freeze's message says who may)
            override_freeze=request.POST.get("override_freeze", "").strip()[:REASON_MAX] or None,
            # the version already live here: only with the "redeploy" box ticked
            redeploy=request.POST.get("redeploy") == "1",
        )
    except InvalidSpec as exc:
        errors = exc.details.get("errors", [])
        return _page(
            request, r, env=env, form=form, errors=errors, error=exc.message, status=exc.status
        )
    except DomainError as exc:
        return _page(request, r, env=env, form=form, error=exc.message, status=exc.status)
    messages.success(
        request, f"Started deploying {r.service.slug} {r.version} to {target.environment.slug}."
    )
    return redirect("deployment", d.pk)
