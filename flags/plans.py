"""Rollout plans: a flag's percentage ladder in one environment, stepped like a canary.

``steps`` are ``[{"percent": 1, "pause": "10m"}, {"percent": 10, "pause": "1h"},
{"percent": 50}, {"percent": 100}]``: each step sets the flag's gradual rollout and holds for
its pause (no pause: until someone promotes it). The periodic ``tick`` moves active plans on when
a pause has run out; it never moves a plan whose flag's kill switch is pulled -- it pauses the
plan instead, and a person decides (``promote``, ``step_back``, ``abort``). Reaching the last
step completes the plan, and the flag page then reminds you to remove the flag from the code.

Every move goes through ``flags.actions.set_rollout`` (roles, audit trail, revision) and is
recorded on the plan; ``decide`` is the pure decision the tick makes.
"""

from __future__ import annotations

from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from flags import actions, governance
from flags.models import FlagSetting, PlanState, RolloutPlan
from releases import audit
from releases.actors import Actor
from releases.errors import Conflict, InvalidSpec
from strategies.durations import parse_duration

OPEN = (PlanState.ACTIVE, PlanState.PAUSED)


def check_steps(raw) -> list[dict]:
    errors = []
    if not isinstance(raw, list) or not raw:
        raise InvalidSpec(
            "A plan needs steps.",
            details={"errors": [{"path": "steps", "message": "must be a non-empty list"}]},
        )
    out, last = [], 0
    for i, step in enumerate(raw):
        at = f"steps[{i}]"
        if not isinstance(step, dict) or set(step) - {"percent", "pause"}:
            errors.append({"path": at, "message": 'must be {"percent": 10, "pause": "10m"}'})
            continue
        percent = step.get("percent")
        if not isinstance(percent, int) or isinstance(percent, bool) or not 0 < percent <= 100:
            errors.append({"path": f"{at}.percent", "message": "must be 1 to 100"})
        elif percent <= last:
            errors.append({"path": f"{at}.percent", "message": "must rise at every step"})
        else:
            last = percent
        pause = step.get("pause")
        try:
            seconds = None if pause is None else parse_duration(pause)
        except ValueError as exc:
            errors.append({"path": f"{at}.pause", "message": str(exc)})
            seconds = None
        out.append({"percent": percent, "pause": seconds})
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


def decide(plan: RolloutPlan, killed: bool, now) -> str:
    """What the tick does with an active plan: "pause" (its flag was killed), "advance" (the
    step's pause is over), or "wait"."""
    if killed:
        return "pause"
    pause = plan.steps[plan.step_index]["pause"]
    if pause is not None and now >= plan.step_started_at + timedelta(seconds=pause):
        return "advance"
    return "wait"


def _audit(actor, plan, action, data=None):
    audit.record(
        actor,
        action,
        plan,
        {"step": plan.step_index, "percent": plan.percent, "state": plan.state, **(data or {})},
        object_repr=f"{plan.flag.key} in {plan.environment.slug}",
    )


def start(actor, flag, environment, steps) -> RolloutPlan:
    governance.require(actor, "flag.change", environment)
    clean = check_steps(steps)
    try:
        with transaction.atomic():
            plan = RolloutPlan.objects.create(
                flag=flag, environment=environment, steps=clean, created_by=actor.name[:150]
            )
            actions.set_rollout(actor, flag, environment, clean[0]["percent"])
            actions.set_enabled(actor, flag, environment, True)
            _audit(actor, plan, "flag.plan.start", {"steps": clean})
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
            actions.set_rollout(actor, plan.flag, plan.environment, percent)
            plan.step_index, plan.step_started_at = index, timezone.now()
        plan.state = state or plan.state
        if plan.state == PlanState.ACTIVE and plan.step_index == len(plan.steps) - 1:
            plan.state = PlanState.COMPLETED
            message = message or "At 100 %: remove the flag from the code, then archive it."
        plan.message = message[:300]
        plan.save()
        _audit(actor, plan, action, {"message": plan.message})
    return plan


def promote(actor, plan: RolloutPlan) -> RolloutPlan:
    """The next step now (a paused plan resumes)."""
    governance.require(actor, "flag.change", plan.environment)
    return _move(
        actor, plan.pk, "flag.plan.promote", index=plan.step_index + 1, state=PlanState.ACTIVE
    )


def step_back(actor, plan: RolloutPlan, reason: str = "") -> RolloutPlan:
    """The previous step's percentage, and the plan waits for a person."""
    governance.require(actor, "flag.change", plan.environment)
    with transaction.atomic():
        plan = _locked(plan.pk)
        if plan.step_index == 0:
            actions.set_rollout(actor, plan.flag, plan.environment, 0)
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


def abort(actor, plan: RolloutPlan, reason: str = "") -> RolloutPlan:
    governance.require(actor, "flag.change", plan.environment)
    with transaction.atomic():
        plan = _locked(plan.pk)
        if plan.state not in OPEN:
            raise Conflict(f"The plan is {plan.state}.", details={"state": plan.state})
        actions.set_rollout(actor, plan.flag, plan.environment, 0)
        plan.state, plan.message = PlanState.ABORTED, (reason or "aborted: back to 0 %")[:300]
        plan.save()
        _audit(actor, plan, "flag.plan.abort", {"percent": 0})
    return plan


def tick(now=None) -> int:
    """Move every active plan whose pause is over (safe to run twice, from any worker: each
    plan is re-read under its row lock). Returns how many plans moved."""
    now = now or timezone.now()
    actor = Actor.system("flags-plans")
    moved = 0
    for plan_id in RolloutPlan.objects.filter(state=PlanState.ACTIVE).values_list("pk", flat=True):
        with transaction.atomic():
            plan = _locked(plan_id)
            if plan.state != PlanState.ACTIVE:
                continue
            killed = FlagSetting.objects.filter(
                flag=plan.flag, environment=plan.environment, killed_at__isnull=False
            ).exists()
            move = decide(plan, killed, now)
        if move == "pause":
            _move(
                actor,
                plan_id,
                "flag.plan.hold",
                state=PlanState.PAUSED,
                message="held: the kill switch is pulled",
            )
            moved += 1
        elif move == "advance":
            _move(actor, plan_id, "flag.plan.advance", index=plan.step_index + 1)
            moved += 1
    return moved
