"""Analysis gates for rollout plans: a step held until a canary analysis of the flag's cohorts
passes, with releases' analysis templates and the same judge (``strategies.analysis``).

A gated step is ``{"percent": 10, "gate": "analysis", "analysis": {"template": "flag-errors",
"args": {...}, "baseline": "off", "canary": "on"}}``. While the step holds, every plan tick
measures the template's metrics for two cohorts of the flag -- ``baseline`` (default ``off``: the
users the flag is off for) and ``canary`` (default ``on``) -- and judges them as a deployment's
canary is judged. A cohort plays the part a slot plays for a deployment: queries name it with
``{{slot}}`` (for a multivariate flag, cohorts are variant names), and the flag and environment
with ``{{args.flag}}`` / ``{{args.environment}}`` when the template declares those arguments
(filled in here). For example, with Prometheus::

    sum(increase(shop_requests_total{flag="{{args.flag}}", cohort="{{slot}}", code=~"5.."}
        [{{window}}])) / sum(increase(shop_requests_total{flag="{{args.flag}}",
        cohort="{{slot}}"}[{{window}}]))

The run lives on the plan (``RolloutPlan.gate``): the bound template, the judge's state and
every measurement, so a restart or another worker carries on where the last tick stopped. The
verdict is the judge's: ``pass`` moves the plan on (once the step's pause is over), ``fail``
steps it back by itself, ``inconclusive`` holds it for a person (``flags.plans.decide``).

Metric provider calls happen outside any transaction; the result is recorded under the plan's
row lock only if the plan is still on the step it measured (a promote meanwhile wins).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from django.db import transaction

from flags.models import RolloutPlan
from integrations.base import Arm, IntegrationError, MetricQuery
from integrations.metrics import build_metrics
from releases.analysis import secrets
from releases.analysis.sources import MODES
from releases.analysis.templates import get_template, invalid_template
from releases.errors import DomainError
from strategies.analysis import run as pure
from strategies.analysis.template import TemplateError, bind, normalise, resolve_args

logger = logging.getLogger(__name__)

KEYS = {"template", "args", "baseline", "canary"}
FILLED = ("flag", "environment")  # arguments filled in from the plan when declared


def check(raw: Any, at: str, flag_key: str, env_slug: str) -> tuple[dict | None, list[dict]]:
    """A gated step's ``analysis`` normalised (template found, arguments resolved), or the
    errors by path."""
    if not isinstance(raw, dict) or set(raw) - KEYS or not isinstance(raw.get("template"), str):
        return None, [
            {"path": at, "message": '{"template": "name", "args": {}, "baseline", "canary"}'}
        ]
    args = raw.get("args") or {}
    baseline, canary = raw.get("baseline", "off"), raw.get("canary", "on")
    errors = []
    if not isinstance(args, dict):
        errors.append({"path": f"{at}.args", "message": "must be an object"})
    for name, value in (("baseline", baseline), ("canary", canary)):
        if not isinstance(value, str) or not value or len(value) > 100:
            errors.append({"path": f"{at}.{name}", "message": "a cohort: on, off or a variant"})
    if baseline == canary:
        errors.append({"path": f"{at}.canary", "message": "must differ from the baseline"})
    if errors:
        return None, errors
    try:
        spec = get_template(raw["template"]).spec
    except DomainError as exc:
        return None, [{"path": f"{at}.template", "message": exc.message}]
    try:
        _bound(spec, args, flag_key, env_slug)
    except TemplateError as exc:
        found = exc.as_dicts()
        return None, [{"path": f"{at}.{e['path']}", "message": e["message"]} for e in found]
    clean = {"template": raw["template"], "args": args, "baseline": baseline, "canary": canary}
    return clean, []


def _bound(spec: dict, args: dict, flag_key: str, env_slug: str) -> tuple[dict, dict]:
    spec = normalise(spec)
    declared = {a["name"] for a in spec.get("args") or []}
    given = {
        **{k: v for k, v in (("flag", flag_key), ("environment", env_slug)) if k in declared},
        **args,
    }
    bound_args = resolve_args(spec, given)
    return bind(spec, bound_args), bound_args


def _begin(plan: RolloutPlan, now: float) -> dict:
    step = plan.steps[plan.step_index]["analysis"]
    template = get_template(step["template"])
    try:
        spec, args = _bound(template.spec, step["args"], plan.flag.key, plan.environment.slug)
    except TemplateError as exc:  # the template changed since the plan started
        raise invalid_template(exc, f"Cannot start analysis {step['template']!r}") from None
    return {
        "step": plan.step_index,
        "since": plan.step_started_at.isoformat(),
        "template": template.name,
        "args": args,
        "baseline": step["baseline"],
        "canary": step["canary"],
        "spec": spec,
        "state": pure.new_state(spec, now),
        "history": {},
        "decision": "running",
        "reason": "Measuring.",
    }


def _current(plan: RolloutPlan) -> bool:
    gate = plan.gate or {}
    return gate.get("step") == plan.step_index and gate.get("since") == (
        plan.step_started_at.isoformat()
    )


def fetcher(run: dict, flag_key: str, env_slug: str):
    sources: dict[str, Any] = {}

    def fetch(metric: dict, action: str, cursor, start: float, end: float) -> dict:
        try:
            if metric["provider"] == "job":
                raise IntegrationError("a job metric needs a deployment's target", permanent=True)
            source = sources.get(metric["name"])
            if source is None:
                source = sources[metric["name"]] = build_metrics(
                    metric["provider"], target=f"flag:{flag_key}", address=metric.get("address")
                )
            args = {**run["args"], **secrets.values(run["spec"])}
            query = MetricQuery(
                query=metric["query"],
                total_query=metric.get("total_query"),
                mode=MODES[metric["test"]],
                baseline=Arm(run["baseline"]),
                canary=Arm(run["canary"]),
                target=f"flag:{flag_key}",
                values={
                    "target": flag_key,
                    "service": "",
                    "environment": env_slug,
                    **{f"args.{k}": v for k, v in args.items()},
                },
                step=metric["step"],
            )
            if action == "begin":
                return {"cursor": source.begin(query)}
            return source.fetch(query, cursor or {}, start, end)
        except IntegrationError as exc:
            logger.info("flag %s analysis, metric %s: %s", flag_key, metric["name"], exc.message)
            return {"error": exc.message, "permanent": exc.permanent}

    return fetch


def look(plan_id: int, now: float | None = None) -> str | None:
    """Measure what is due for the analysis of the plan's current step and record it; its
    decision (pass | fail | inconclusive | running), None when the step has no analysis gate."""
    now = time.time() if now is None else now
    plan = RolloutPlan.objects.select_related("flag", "environment").get(pk=plan_id)
    if plan.steps[plan.step_index].get("gate") != "analysis":
        return None
    run = plan.gate if _current(plan) else _begin(plan, now)
    if run["decision"] != "running":
        return run["decision"]
    fetch = fetcher(run, plan.flag.key, plan.environment.slug)
    state, new, verdict = pure.advance(run["spec"], run["state"], run["history"], now, fetch)
    history = {k: list(v) for k, v in run["history"].items()}
    for name, _index, result in new:
        history.setdefault(name, []).append(result)
    run = {
        **run,
        "state": state,
        "history": history,
        "decision": verdict.decision if verdict.phase != "running" else "running",
        "reason": verdict.reason,
        "score": verdict.score,
    }
    with transaction.atomic():
        locked = RolloutPlan.objects.select_for_update().get(pk=plan_id)
        if (locked.step_index, locked.step_started_at) != (plan.step_index, plan.step_started_at):
            return None  # moved meanwhile: this look is for a step that is over
        locked.gate = run
        locked.save(update_fields=["gate"])
    return run["decision"]


def summary(plan: RolloutPlan) -> dict | None:
    """The current step's analysis as the flag page shows it (None: none running for it)."""
    if not plan or plan.state not in ("active", "paused") or not _current(plan):
        return None
    gate = plan.gate
    looks = sum(len(v) for v in gate.get("history", {}).values())
    return {
        "template": gate["template"],
        "cohorts": f"{gate['canary']} vs {gate['baseline']}",
        "decision": gate["decision"],
        "reason": gate.get("reason", ""),
        "looks": looks,
    }
