"""One deployment's page, its action buttons, and the list of deployments.

The page is made of partials (``templates/releases/deployment/_*.html``), one per section, so a
new section (approvals, analysis runs) is one more include. The buttons are their own partial,
served alone at ``/deployments/<id>/actions/`` so that the page re-renders them from the server
when the state changes: whether a button is enabled, why not, and what its confirmation says are
decided here only.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.http import Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.dateparse import parse_datetime
from django.views.decorators.http import require_POST

from releases import actions
from releases.actors import Actor
from releases.errors import DomainError, Forbidden, NotFound
from releases.live import charts
from releases.live.presenters import deployment_dict, runs_on
from releases.models import ACTIVE_STATES, Channel, Deployment, State
from releases.web.common import (
    deployments,
    list_context,
    one_of,
    refusal,
    visible_deployments,
    words,
)
from releases.web.governance import approval_confirm, gate_reason, governance_context
from strategies.spec import describe_steps
from strategies.spec_experiment import slot_keys

EVENT_LIMIT = 100
PAGE_SIZE = 50


# --- the operator commands ------------------------------------------------------------------------


@dataclass(frozen=True)
class Command:
    label: str
    command: str  # the name in actions.ALLOWED and in the API's "deployment.<command>" action
    run: Callable[[Actor, int, str], Deployment]
    takes_reason: bool = False


# the buttons, in the order they appear
COMMANDS: dict[str, Command] = {
    "promote": Command("Promote", "promote", lambda a, pk, _: actions.promote(a, pk)),
    "promote_full": Command(
        "Promote full", "promote", lambda a, pk, _: actions.promote(a, pk, full=True)
    ),
    "pause": Command("Pause", "pause", lambda a, pk, _: actions.pause(a, pk)),
    "resume": Command("Resume", "resume", lambda a, pk, _: actions.resume(a, pk)),
    "abort": Command("Abort", "abort", lambda a, pk, r: actions.abort(a, pk, reason=r), True),
    "rollback": Command(
        "Roll back", "rollback", lambda a, pk, r: actions.rollback(a, pk, reason=r), True
    ),
    # governance: the reason box is the approver's comment (releases.web.governance)
    "approve": Command(
        "Approve", "approve", lambda a, pk, r: actions.approve(a, pk, comment=r), True
    ),
    "reject": Command("Reject", "reject", lambda a, pk, r: actions.reject(a, pk, comment=r), True),
}


@dataclass
class Action:
    name: str
    label: str
    allowed: bool
    reason: str  # why it is disabled ("" when allowed)
    confirm: str  # what will happen, asked before doing it
    takes_reason: bool


def steps_of(spec: dict) -> list[str]:
    try:
        return describe_steps(spec)
    except (KeyError, TypeError, ValueError):  # an old or unknown kind: show no plan
        return []


def confirm_text(d: Deployment, name: str, steps: list[str]) -> str:
    """What pressing the button will do, in words, naming versions and the environment."""
    if name in ("approve", "reject"):
        return approval_confirm(d, name)
    service, env = d.target.service.slug, d.target.environment.slug
    new = d.release.version
    old = d.from_release.version if d.from_release_id else None
    back = f"back to {old}" if old else f"away from {new} ({service} had no release before)"
    if name == "promote":
        following = steps[d.step_index + 1] if d.step_index + 1 < len(steps) else ""
        return f"Move {service} {new} in {env} on to the next step" + (
            f": {following}?" if following else "?"
        )
    if name == "promote_full":
        return f"Send 100% of {service} in {env} to {new} now, skipping the remaining steps?"
    if name == "pause":
        return f"Pause the rollout of {service} {new} in {env}? Traffic stays split as it is now."
    if name == "resume":
        return f"Resume the rollout of {service} {new} in {env}?"
    if name == "abort":
        return f"Abort: send 100% of {service} in {env} {back} and stop {new}?"
    if d.state == State.SUCCEEDED and actions.window.is_open(d):
        return (
            f"Roll back {service} in {env}: switch back to {old} (still warm in slot "
            f"{d.stable_slot}, the rollback window) and retire {new}?"
        )
    if d.state == State.SUCCEEDED:
        return (
            f"Roll back {service} in {env}: deploy {old} again (every instance at once) "
            f"and retire {new}?"
        )
    return f"Roll back: send 100% of {service} in {env} {back} and stop {new}?"


def state_reason(d: Deployment, name: str) -> str:
    """Why the deployment's state does not allow the command ("" when it does)."""
    cmd = COMMANDS[name]
    if name in ("approve", "reject"):  # awaiting approval, or a canary step gate
        return gate_reason(d, cmd.label)
    states = actions.ALLOWED[cmd.command]
    if d.state not in states:
        return f"{cmd.label} needs the deployment to be {one_of(states)}; it is {words(d.state)}."
    if name == "rollback" and d.state == State.SUCCEEDED:
        if d.from_release_id is None:
            return (
                f"{d.release.version} was the first release here: there is nothing to go back to."
            )
        if d.target.stable_release_id != d.release_id:
            return "A later deployment replaced this one: roll back the latest deployment instead."
    return ""


# shown only while a gate waits for a decision: with no approval to give, they are noise
GATE_COMMANDS = ("approve", "reject")


def actions_for(request, d: Deployment, steps: list[str]) -> list[Action]:
    out = []
    for name, cmd in COMMANDS.items():
        off_by_state = state_reason(d, name)
        if name in GATE_COMMANDS and off_by_state:
            continue
        reason = off_by_state or refusal(request, f"deployment.{cmd.command}", d)
        out.append(
            Action(
                name=name,
                label=cmd.label,
                allowed=not reason,
                reason=reason,
                confirm=confirm_text(d, name, steps),
                takes_reason=cmd.takes_reason,
            )
        )
    return out


# --- the page -------------------------------------------------------------------------------------


def _slots(observed: dict) -> list[dict]:
    """Target.observed as rows, the stable role first."""
    order = {"stable": 0, "canary": 1}
    rows = [{"name": name, **(slot or {})} for name, slot in (observed or {}).items()]
    return sorted(rows, key=lambda s: (order.get(s.get("role", ""), 2), s["name"]))


def _load(request, pk: int) -> Deployment:
    d = get_object_or_404(deployments().select_related("target__stable_release"), pk=pk)
    if refusal(request, "deployment.view", d):
        raise Http404("No such deployment.")  # outsiders learn nothing
    return d


def split_words(state: str) -> dict[str, str]:
    """What each side of the split is called now: once a rollout has shipped, the new release's
    slot is the stable one (as the Instances card says); once it has been undone, the canary's
    slot is retired. static/js/deployment.js (splitWords) says the same live."""
    if state == State.SUCCEEDED:
        return {"stable": "previous", "canary": "stable"}
    if state in (State.ROLLED_BACK, State.ABORTED, State.FAILED, State.REJECTED):
        return {"stable": "stable", "canary": "retired"}
    return {"stable": "stable", "canary": "canary"}


def _split(d: Deployment) -> list[dict]:
    """The traffic split bar: one segment per slot, the slot that served before first (and an
    experiment's slots, together, after it)."""
    weights = d.weights or {}
    if weights:
        stable, canary = weights.get("stable", 0), weights.get("canary", 0)
    else:  # nothing routed yet: whatever ran before still serves everything
        stable, canary = (100 if d.from_release_id else 0), 0
    called = split_words(d.state)
    # a canary with an experiment step: its slots' share (0 but while it runs) between the two
    experiment = (
        [
            {
                "role": "experiment",
                "label": "experiment",
                "slot": f"exp-{d.pk}-*",
                "version": "a fresh baseline and canary",
                "weight": weights.get("experiment", 0),
            }
        ]
        if slot_keys(d.strategy or {})
        else []
    )
    return [
        {
            "role": "stable",
            "label": called["stable"],
            "slot": d.stable_slot,
            "version": d.from_release.version if d.from_release_id else "",
            "weight": stable,
        },
        *experiment,
        {
            "role": "canary",
            "label": called["canary"],
            "slot": d.canary_slot,
            "version": d.release.version,
            "weight": canary,
        },
    ]


# the live charts: (key in a sample's slot, title, unit)
CHARTS = (
    ("rps", "Request rate", "req/s"),
    ("error_rate", "Error rate", "%"),
    ("p95_ms", "Latency p95", "ms"),
    ("p99_ms", "Latency p99", "ms"),
)


def show_value(key: str, value) -> str:
    """A sample's value as the chart legends show it (deployment.js formats the same way)."""
    if value is None:
        return "—"
    if key == "error_rate":
        return f"{100 * value:.2f}%"
    if key == "rps":
        return f"{value:.1f}/s"
    return f"{value:.0f} ms"


def charts_for(d: Deployment, latest: dict | None, split: dict | None = None) -> list[dict]:
    """The charts' legends: request and error rates over ``split``'s seconds (both sides alike,
    charts.split_rates) when there is one, the latencies from the latest sample."""
    slots = (latest or {}).get("slots", {})
    out = []
    for key, title, unit in CHARTS:
        row = {"key": key, "title": title, "unit": unit}
        for role, slot in (("stable", d.stable_slot), ("canary", d.canary_slot)):
            sample = (split or {}).get("sides", {}).get(role) if key in SPLIT_KEYS else None
            sample = sample or slots.get(slot)
            row[role] = show_value(key, sample.get(key)) if sample else None
        out.append(row)
    return out


SPLIT_KEYS = ("rps", "error_rate")  # the legends read over the split's window, not one sample


def split_for(d: Deployment) -> dict | None:
    """Each side's rate and share over the latest samples at one split (charts.split_rates)."""
    recent = charts.window(d.target_id, time.time() - charts.STEADY_SECONDS - 10)
    return charts.split_rates(recent, {"stable": d.stable_slot, "canary": d.canary_slot})


def attention(d: Deployment, pause: dict | None) -> tuple[str, str] | None:
    """(tab title word, banner) when the deployment needs the person watching or went wrong;
    static/js/deployment.js (attention) says the same live."""
    kind = (pause or {}).get("kind")
    if d.state == State.FAILED:
        return (
            "Failed",
            f"This deployment failed: {d.failure_reason or d.message or 'see the events.'}",
        )
    if d.state == State.ROLLED_BACK:
        return "Rolled back", (
            "This deployment was rolled back: every request is on the stable release."
        )
    if d.state == State.ROLLING_BACK:
        return "Rolling back", f"Rolling back: {d.failure_reason or d.message}"
    if d.state == State.AWAITING_APPROVAL or kind == "approval":
        return "Needs approval", "Waiting for an approval before it can go on."
    if kind == "promotion":
        return "Waiting for you", "Waiting for someone to press Promote."
    if kind == "operator":
        return "Paused", "Paused: Resume continues the rollout."
    return None


@login_required
def deployment(request, pk: int):
    d = _load(request, pk)
    events = list(reversed(d.events.order_by("-id")[:EVENT_LIMIT]))
    steps = steps_of(d.strategy)
    data = deployment_dict(d)
    pause = data["pause"]
    latest = charts.latest(d.target_id)
    split_rates = split_for(d)
    return render(
        request,
        "releases/deployment.html",
        {
            "d": d,
            "state_label": words(d.state),
            "target": d.target,
            # where it runs, when its provider says: a kubernetes target's cluster, namespace
            # and router ("prod-eu · shop/api · istio"), as on the board
            "runs_on": runs_on(d.target),
            "slots": _slots(d.target.observed),
            "steps": steps,
            "pause": pause,
            "attention": attention(d, pause),
            "events": events,
            "last_event_id": events[-1].pk if events else 0,
            "split": _split(d),
            "called": split_words(d.state),
            "actions": actions_for(request, d, steps),
            "analysis": data["analysis"],
            "latest": latest,
            "split_rates": split_rates,
            "charts": charts_for(d, latest, split_rates),
            "pause_until": parse_datetime(pause["until"]) if pause and pause["until"] else None,
            **governance_context(d),  # approvals, freeze overrides, a freeze in force
        },
    )


@login_required
def deployment_actions(request, pk: int):
    """The buttons alone, as the page shows them now (the page swaps them in live)."""
    d = _load(request, pk)
    steps = steps_of(d.strategy)
    return render(
        request,
        "releases/deployment/_actions.html",
        {"d": d, "actions": actions_for(request, d, steps)},
    )


@require_POST
def deployment_action(request, pk: int, action: str):
    """POST /deployments/<id>/<action>/: run the command; JSON for fetch, else redirect back."""
    if action not in COMMANDS:
        raise Http404(f"No such action: {action}")
    cmd = COMMANDS[action]
    wants_json = "application/json" in request.headers.get("Accept", "")

    def fail(exc: DomainError):
        if wants_json:
            return JsonResponse(
                {"code": exc.code, "message": exc.message, "details": exc.details},
                status=exc.status,
            )
        if isinstance(exc, NotFound):
            raise Http404(exc.message)
        messages.error(request, exc.message)
        return redirect("deployment", pk)

    if not request.user.is_authenticated:
        if wants_json:
            return JsonResponse(
                {"code": "unauthenticated", "message": "Your session has ended: sign in again."},
                status=401,
            )
        return redirect_to_login(request.get_full_path())
    d = deployments().filter(pk=pk).first()
    if d is None or refusal(request, "deployment.view", d):
        return fail(NotFound(f"Deployment {pk} does not exist."))
    refused = refusal(request, f"deployment.{cmd.command}", d)
    if refused:
        return fail(Forbidden(refused))
    reason = request.POST.get("reason", "").strip()[:500] if cmd.takes_reason else ""
    if not wants_json and request.POST.get("confirmed") != "1":
        # without JavaScript there was no dialog: ask here, naming what will happen (a command
        # the state does not allow goes straight on, to fail with its reason)
        steps = steps_of(d.strategy)
        asked = next(a for a in actions_for(request, d, steps) if a.name == action)
        if asked.allowed:
            context = {"d": d, "action": asked, "reason": reason}
            return render(request, "releases/deployment/confirm.html", context)
    try:
        result = cmd.run(Actor.from_request(request, channel=Channel.UI), pk, reason)
    except DomainError as exc:
        return fail(exc)
    if result.pk != pk:  # rolling back a succeeded deployment starts a new one
        done = f"Started deployment #{result.pk} to roll back to {result.release.version}."
    else:
        done = f"{cmd.label}: done ({words(result.state)})."
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


# --- the list -------------------------------------------------------------------------------------


@login_required
def deployment_list(request):
    """Every deployment, newest first, filtered by ?service=&environment=&state=."""
    filters = {
        "service": request.GET.get("service", ""),
        "environment": request.GET.get("environment", ""),
        "state": request.GET.get("state", ""),
    }
    qs = visible_deployments(request).order_by("-id")  # creation order, by the primary key
    if filters["service"]:
        qs = qs.filter(target__service__slug=filters["service"])
    if filters["environment"]:
        qs = qs.filter(target__environment__slug=filters["environment"])
    if filters["state"] == "active":
        qs = qs.filter(state__in=ACTIVE_STATES)
    elif filters["state"]:
        qs = qs.filter(state=filters["state"])
    return render(
        request,
        "releases/deployment_list.html",
        {
            **list_context(request, qs, filters, PAGE_SIZE),
            "states": [("active", "any active")] + [(s.value, words(s.value)) for s in State],
        },
    )
