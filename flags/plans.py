"""Rollout plans: a flag's percentage ladder in one environment, stepped like a canary.

``steps`` are ``[{"percent": 1, "pause": "10m"}, {"percent": 10, "pause": "1h"},
{"percent": 50}, {"percent": 100}]``: each step sets the flag's gradual rollout and holds for
its pause (no pause: until someone promotes it). The periodic ``tick`` moves active plans on when
a pause has run out; it never moves a plan whose flag's kill switch is pulled -- it pauses the
plan instead, and a person decides (``promote``, ``step_back``, ``abort``). Reaching the last
step completes the plan, and the flag page then reminds you to remove the flag from the code.

A step may be gated (``"gate": "experiment"``): it holds until the flag's running experiment
there (``flags.experiments``) has a verdict -- ``better`` moves on (once its pause, if any, is
over), ``worse`` steps back automatically (the previous percentage, paused, for a person), a
sample-ratio mismatch pauses the plan. A plan may end with a cleanup step
(``{"cleanup": true, "pause": "14d"}``, after 100 %): it stays open, reminds (message, audit)
when its pause is over, and completes when someone confirms the flag is out of the code.

A step may instead be gated by a canary analysis of the flag's cohorts (``"gate": "analysis"``
with ``"analysis": {"template", "args", "baseline", "canary"}``, ``flags.analysis``): releases'
analysis templates judged by the same judge as a deployment's canary; ``pass`` moves on (once
its pause is over), ``fail`` steps back automatically, ``inconclusive`` pauses the plan.

Deploy, then release: a plan may start with a deployment (``deployment``: one in the plan's
environment). Its first step is then the deployment itself (``{"deploy": true}``, the flag on at
0 %): the timeline shows the deployment's canary steps before the flag's, Promote and Abort on
the plan drive the deployment (through ``releases.actions``) while it runs, and the flag's steps
begin when it succeeds. A deployment that fails, is rolled back or aborted aborts the plan (the
flag stays at 0 %).

Segment first: steps may begin with ``{"segment": "internal", "pause": "1d"}`` (a reusable
segment by name, before any percentage): the flag is on for everyone in the segment (and 0 %
of the rest); the segment stays on as the percentages climb, and comes off on a step back past
it or an abort. So one plan reads: internal users -> 1 % -> 10 % -> an A/B at 50 % -> 100 % ->
cleanup.

Every move goes through ``flags.actions.set_rollout`` (roles, audit trail, revision) and is
recorded on the plan; ``decide`` is the pure decision the tick makes.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from flags import actions, analysis, experiments, governance, live
from flags.models import (
    Experiment,
    ExperimentState,
    FlagSetting,
    PlanState,
    RolloutPlan,
    Segment,
)
from releases import actions as deployments
from releases import audit
from releases.actors import Actor
from releases.errors import Conflict, DomainError, InvalidSpec, NotFound
from releases.models import ACTIVE_STATES as ACTIVE
from releases.models import Deployment, State
from strategies.durations import parse_duration

logger = logging.getLogger(__name__)

OPEN = (PlanState.ACTIVE, PlanState.PAUSED)


GATES = ("experiment", "analysis")
FAILED_DEPLOYMENT = (State.FAILED, State.ROLLED_BACK, State.ABORTED, State.REJECTED)
REMINDER = "Cleanup overdue"


def deploy_step() -> dict:
    return {"percent": 0, "pause": None, "gate": None, "cleanup": False, "deploy": True}


def check_steps(raw, flag_key: str = "", env_slug: str = "") -> list[dict]:
    errors = []
    if not isinstance(raw, list) or not raw:
        raise InvalidSpec(
            "A plan needs steps.",
            details={"errors": [{"path": "steps", "message": "must be a non-empty list"}]},
        )
    out, last = [], 0
    for i, step in enumerate(raw):
        at = f"steps[{i}]"
        if not isinstance(step, dict) or set(step) - {
            "percent",
            "pause",
            "gate",
            "cleanup",
            "analysis",
            "segment",
        }:
            errors.append(
                {"path": at, "message": '{"percent": 10, "pause": "10m", "gate": "experiment"}'}
            )
            continue
        pause = step.get("pause")
        try:
            seconds = None if pause is None else parse_duration(pause)
        except ValueError as exc:
            errors.append({"path": f"{at}.pause", "message": str(exc)})
            seconds = None
        if step.get("cleanup") is not None:
            if step["cleanup"] is not True or set(step) - {"cleanup", "pause"}:
                errors.append(
                    {"path": at, "message": 'a cleanup step is {"cleanup": true, "pause"}'}
                )
            elif i != len(raw) - 1 or last != 100:
                errors.append({"path": at, "message": "the cleanup step comes last, after 100"})
            out.append({"percent": 100, "pause": seconds, "gate": None, "cleanup": True})
            continue
        if "segment" in step:
            segment = (
                Segment.objects.filter(name=step["segment"]).first()
                if isinstance(step["segment"], str)
                else None
            )
            if segment is None:
                errors.append({"path": f"{at}.segment", "message": "names no segment"})
            elif last != 0 or "percent" in step:
                errors.append(
                    {"path": at, "message": "a segment step comes before the percentages"}
                )
            gate = step.get("gate")
            if gate is not None and gate not in GATES:
                errors.append({"path": f"{at}.gate", "message": f"one of {', '.join(GATES)}"})
            if gate == "analysis" or "analysis" in step:
                errors.append(
                    {"path": f"{at}.analysis", "message": "a segment step has no cohorts to judge"}
                )
            out.append(
                {
                    "percent": 0,
                    "pause": seconds,
                    "gate": gate if gate != "analysis" else None,
                    "cleanup": False,
                    "segment": segment.pk if segment else None,
                    "segment_name": step["segment"] if segment else "",
                }
            )
            continue
        percent = step.get("percent")
        if not isinstance(percent, int) or isinstance(percent, bool) or not 0 < percent <= 100:
            errors.append({"path": f"{at}.percent", "message": "must be 1 to 100"})
        elif percent <= last:
            errors.append({"path": f"{at}.percent", "message": "must rise at every step"})
        else:
            last = percent
        gate = step.get("gate")
        if gate is not None and gate not in GATES:
            errors.append({"path": f"{at}.gate", "message": f"one of {', '.join(GATES)}"})
        clean = {"percent": percent, "pause": seconds, "gate": gate, "cleanup": False}
        if gate == "analysis":
            clean["analysis"], found = analysis.check(
                step.get("analysis"), f"{at}.analysis", flag_key, env_slug
            )
            errors.extend(found)
        elif "analysis" in step:
            errors.append({"path": f"{at}.analysis", "message": 'only with "gate": "analysis"'})
        out.append(clean)
    if last != 100:
        errors.append(
            {
                "path": f"steps[{len(raw) - 1}].percent",
                "message": "the last step must be 100 (everyone)",
            }
        )
    if errors:
        raise InvalidSpec("The plan's steps are not valid.", details={"errors": errors})
    return out


def decide(
    plan: RolloutPlan,
    killed: bool,
    now,
    verdict: str | None = None,
    deployment_state: str | None = None,
) -> str:
    """What the tick does with an active plan: "pause" (its flag was killed, the step's
    experiment shows a sample-ratio mismatch or its analysis is inconclusive), "step_back" (the
    step's experiment shows the change is worse, or its analysis failed), "advance" (the pause
    is over and the gate, if any, passed; at the deploy step: the deployment succeeded),
    "abort" (the plan's deployment did not succeed), "remind" (a cleanup step's pause is over),
    or "wait". ``verdict`` is the step's gate's verdict: the experiment's overall verdict or
    the analysis's decision (None: nothing to judge yet)."""
    step = plan.steps[plan.step_index]
    if step.get("deploy"):
        if deployment_state == State.SUCCEEDED:
            return "advance"
        return "abort" if deployment_state in (None, *FAILED_DEPLOYMENT) else "wait"
    if killed:
        return "pause"
    pause = step["pause"]
    over = pause is None or now >= plan.step_started_at + timedelta(seconds=pause)
    if step.get("cleanup"):
        reminded = plan.message.startswith(REMINDER)
        return "remind" if pause is not None and over and not reminded else "wait"
    if step.get("gate") == "experiment":
        if verdict == "worse":
            return "step_back"
        if verdict == "sample_ratio_mismatch":
            return "pause"
        return "advance" if verdict == "better" and over else "wait"
    if step.get("gate") == "analysis":
        if verdict == "fail":
            return "step_back"
        if verdict == "inconclusive":
            return "pause"
        return "advance" if verdict == "pass" and over else "wait"
    if pause is not None and over:
        return "advance"
    return "wait"


def open_plan(key: str, env: str) -> RolloutPlan:
    """The flag's open plan in the environment; NotFound if it has none."""
    plan = (
        RolloutPlan.objects.select_related("flag", "environment")
        .filter(flag__key=key, environment__slug=env, state__in=OPEN)
        .first()
    )
    if plan is None:
        raise NotFound(f"{key} has no open rollout plan in {env}.")
    return plan


def _audit(actor, plan, action, data=None):
    audit.record(
        actor,
        action,
        plan,
        {"step": plan.step_index, "percent": plan.percent, "state": plan.state, **(data or {})},
        object_repr=f"{plan.flag.key} in {plan.environment.slug}",
    )
    live.publish(plan.flag_id)


def segments_on(steps: list[dict], index: int) -> list[int]:
    """The segments a plan at step ``index`` has turned the flag on for (-1: none)."""
    return [s["segment"] for s in steps[: index + 1] if s.get("segment")]


def start(actor, flag, environment, steps, deployment: Deployment | None = None) -> RolloutPlan:
    """Start a plan; with ``deployment`` (one in ``environment``, not yet over or succeeded)
    the plan waits for it first: deploy, then release."""
    governance.require(actor, "flag.change", environment)
    clean = check_steps(steps, flag.key, environment.slug)
    if deployment is not None:
        if deployment.target.environment_id != environment.pk:
            raise InvalidSpec(
                f"Deployment {deployment.pk} is not in {environment.slug}.",
                details={"errors": [{"path": "deployment", "message": "not this environment"}]},
            )
        if deployment.state in FAILED_DEPLOYMENT:
            raise Conflict(
                f"Deployment {deployment.pk} is {deployment.state}: nothing to release after.",
                details={"state": deployment.state},
            )
        clean = [deploy_step(), *clean]
    try:
        with transaction.atomic():
            plan = RolloutPlan.objects.create(
                flag=flag,
                environment=environment,
                steps=clean,
                deployment=deployment,
                created_by=actor.name[:150],
                message=(
                    f"Deploying first (deployment {deployment.pk}): the flag's steps begin "
                    "when it succeeds."
                )
                if deployment
                else "",
            )
            actions.set_rollout(
                actor, flag, environment, clean[0]["percent"], segments=segments_on(clean, 0)
            )
            actions.set_enabled(actor, flag, environment, True)
            _audit(
                actor,
                plan,
                "flag.plan.start",
                {"steps": clean, "deployment": deployment.pk if deployment else None},
            )
    except IntegrityError as exc:
        raise Conflict(f"{flag.key} already has an open plan in {environment.slug}.") from exc
    return plan


def _locked(plan_id) -> RolloutPlan:
    return (
        RolloutPlan.objects.select_for_update()
        .select_related("flag", "environment")
        .get(pk=plan_id)
    )


def _move(actor, plan_id, action, *, index=None, state=None, message=""):
    with transaction.atomic():
        plan = _locked(plan_id)
        if plan.state not in OPEN:
            raise Conflict(f"The plan is {plan.state}.", details={"state": plan.state})
        if index is not None:
            index = max(0, min(index, len(plan.steps) - 1))
            percent = plan.steps[index]["percent"] if index >= 0 else 0
            actions.set_rollout(
                actor,
                plan.flag,
                plan.environment,
                percent,
                segments=segments_on(plan.steps, index),
            )
            plan.step_index, plan.step_started_at = index, timezone.now()
        plan.state = state or plan.state
        step = plan.steps[plan.step_index]
        if step.get("cleanup") and plan.state == PlanState.ACTIVE and not message:
            message = "At 100 %: remove the flag from the code, then confirm the cleanup step."
        elif plan.state == PlanState.ACTIVE and plan.step_index == len(plan.steps) - 1:
            plan.state = PlanState.COMPLETED
            message = message or "At 100 %: remove the flag from the code, then archive it."
        plan.message = message[:300]
        plan.save()
        _audit(actor, plan, action, {"message": plan.message})
    return plan


def promote(actor, plan: RolloutPlan) -> RolloutPlan:
    """The next step now (a paused plan resumes); at a cleanup step: the flag is out of the
    code, the plan is complete."""
    governance.require(actor, "flag.change", plan.environment)
    if _deploying(plan):  # the deployment's next canary step, through releases' actions
        deployments.promote(actor, plan.deployment_id)
        _audit(actor, plan, "flag.plan.promote", {"deployment": plan.deployment_id})
        return plan
    if plan.steps[plan.step_index].get("cleanup"):
        with transaction.atomic():
            plan = _locked(plan.pk)
            if plan.state not in OPEN:
                raise Conflict(f"The plan is {plan.state}.", details={"state": plan.state})
            plan.state = PlanState.COMPLETED
            plan.message = (
                f"Cleanup confirmed by {actor.name}: archive the flag once no environment needs it."
            )[:300]
            plan.save()
            _audit(actor, plan, "flag.plan.cleanup", {"message": plan.message})
        return plan
    return _move(
        actor, plan.pk, "flag.plan.promote", index=plan.step_index + 1, state=PlanState.ACTIVE
    )


def step_back(actor, plan: RolloutPlan, reason: str = "") -> RolloutPlan:
    """The previous step's percentage, and the plan waits for a person."""
    governance.require(actor, "flag.change", plan.environment)
    with transaction.atomic():
        plan = _locked(plan.pk)
        if plan.step_index == 0:
            actions.set_rollout(actor, plan.flag, plan.environment, 0, segments=[])
            plan.state, plan.message = PlanState.PAUSED, (reason or "stepped back to 0 %")[:300]
            plan.save()
            _audit(actor, plan, "flag.plan.step_back", {"percent": 0})
            return plan
    return _move(
        actor,
        plan.pk,
        "flag.plan.step_back",
        index=plan.step_index - 1,
        state=PlanState.PAUSED,
        message=reason or "stepped back",
    )


def _deploying(plan: RolloutPlan) -> bool:
    """At the deploy step with the deployment still under way."""
    if not plan.steps[plan.step_index].get("deploy") or plan.deployment_id is None:
        return False
    return Deployment.objects.filter(pk=plan.deployment_id, state__in=ACTIVE).exists()


def abort(actor, plan: RolloutPlan, reason: str = "") -> RolloutPlan:
    """Back to 0 % and closed; at the deploy step, the deployment is aborted too."""
    governance.require(actor, "flag.change", plan.environment)
    if _deploying(plan):
        deployments.abort(actor, plan.deployment_id, reason=reason or "the rollout plan aborted")
    with transaction.atomic():
        plan = _locked(plan.pk)
        if plan.state not in OPEN:
            raise Conflict(f"The plan is {plan.state}.", details={"state": plan.state})
        actions.set_rollout(actor, plan.flag, plan.environment, 0, segments=[])
        plan.state, plan.message = PlanState.ABORTED, (reason or "aborted: back to 0 %")[:300]
        plan.save()
        _audit(actor, plan, "flag.plan.abort", {"percent": 0})
    return plan


def _gate_verdict(plan: RolloutPlan, now) -> str | None:
    """The overall verdict of the running experiment a gated step waits for (None: none)."""
    if plan.steps[plan.step_index].get("gate") != "experiment":
        return None
    row = Experiment.objects.filter(
        flag=plan.flag, environment=plan.environment, state=ExperimentState.RUNNING
    ).first()
    if row is None:
        return None
    return experiments.result(row, now)["verdict"]["state"]


def tick(now=None) -> int:
    """Move every active plan whose pause is over (safe to run twice, from any worker: each
    plan is re-read under its row lock). Returns how many plans moved."""
    now = now or timezone.now()
    actor = Actor.system("flags-plans")
    moved = 0
    for plan_id in RolloutPlan.objects.filter(state=PlanState.ACTIVE).values_list("pk", flat=True):
        try:  # measuring (network calls) happens before the plan's row lock
            measured = analysis.look(plan_id, now.timestamp())
        except DomainError as exc:  # the template is gone or changed: a person decides
            measured = "inconclusive"
            logger.warning("plan %s: %s", plan_id, exc.message)
        with transaction.atomic():
            plan = _locked(plan_id)
            if plan.state != PlanState.ACTIVE:
                continue
            killed = FlagSetting.objects.filter(
                flag=plan.flag, environment=plan.environment, killed_at__isnull=False
            ).exists()
            verdict = _gate_verdict(plan, now) if measured is None else measured
            deployment_state = (
                Deployment.objects.filter(pk=plan.deployment_id)
                .values_list("state", flat=True)
                .first()
            )
            move = decide(plan, killed, now, verdict, deployment_state)
        gate = plan.steps[plan.step_index].get("gate")
        if move == "pause":
            if killed:
                why = "held: the kill switch is pulled"
            elif gate == "analysis":
                why = "held: the analysis is inconclusive"
            else:
                why = "held: the experiment's sample ratio does not match its weights"
            _move(actor, plan_id, "flag.plan.hold", state=PlanState.PAUSED, message=why)
            moved += 1
        elif move == "step_back":
            if gate == "analysis":
                why = f"stepped back: the analysis failed ({(plan.gate or {}).get('reason', '')})"
            else:
                why = "stepped back: the experiment's verdict is worse"
            step_back(actor, plan, why)
            moved += 1
        elif move == "abort":
            abort(actor, plan, f"aborted: deployment {plan.deployment_id} did not succeed")
            moved += 1
        elif move == "remind":
            with transaction.atomic():
                plan = _locked(plan_id)
                plan.message = (
                    f"{REMINDER}: the flag is at 100 % since "
                    f"{plan.step_started_at:%Y-%m-%d}; remove it from the code."
                )
                plan.save(update_fields=["message"])
                _audit(actor, plan, "flag.plan.remind", {"message": plan.message})
            moved += 1
        elif move == "advance":
            _move(actor, plan_id, "flag.plan.advance", index=plan.step_index + 1)
            moved += 1
    return moved
