"""One reconcile tick: claim, observe, decide (pure), act (idempotent), record, reschedule.

(Over 400 lines on purpose: a tick is one idea read top to bottom — the order of its calls is
its correctness, routing before or after scaling, rollback routing before observing — and the
helpers it would shed, ``observed_view`` and ``routing_for``, are a few lines each.)

No transaction or row lock is held while the integration is called: the lease (a conditional
update on the row) keeps other workers off, the decision comes from ``strategies.engine``, and the
result is written through ``releases.actions`` with a version check, so an operator command that
lands mid-tick wins and the next tick decides again.

Acting on a decision: routing is applied whole (``Target.set_routing``: weights, the preview slot
and header/cookie/sticky rules with the deployment's slot names), before the scale changes when
it takes traffic off a role that shrinks or off a role entirely, after them otherwise. Smoke checks
the decision asks for run after acting, against the preview (``releases.reconcile.smoke``), and
their result
is stored as ``Deployment.checks`` for the next tick. A step waiting for a person moves the
deployment to paused; a rollback that kept the new release's slot schedules its cleanup.

The rollback path is the one that is timed (abort API call returned -> every new request on the
old release): when the routing of a tick is known before looking (a blue-green or canary rollback,
``strategies.engine.routing_before_observing``), it is the tick's very first call to the target,
ahead of reading its status.

Analysis (``releases.analysis.runs``, docs/analysis.md): before deciding, a forward or paused tick
measures what is due of the deployment's running analyses (provider calls, no transaction) and
hands every run's verdict to the engine as ``Observation.analysis``. After acting, it starts the
runs the decision asks for (and opens their windows at once, right after the routing they
measure) and stops the ones it lets go. While a run measures, the next tick comes when its next
measurement is due if that is sooner than the engine asked. When a tick decides that the rollout
failed (a failed analysis, say), the rollback's routing (100% to the old release, for the kinds
that switch back) is applied right after the decision, before anything is recorded; the rest of
the rollback follows on the priority queue. Analyses still running when the deployment rolls back
or ends are stopped.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import time
import uuid
from dataclasses import dataclass
from datetime import datetime

from integrations.base import IntegrationError, Routing, StaleFence, TargetStatus
from releases import actions
from releases.analysis import runs
from releases.errors import DomainError
from releases.governance import approvals, freezes
from releases.models import Deployment, State
from releases.reconcile import experiment, failures, smoke
from releases.reconcile.lease import Fenced, Lease, LeaseLost
from releases.targets import integration_for, release_ref
from strategies.engine import (
    Decision,
    Observation,
    RoleState,
    RoutePlan,
    decide,
    routing_before_observing,
)
from strategies.spec import health_of, min_ready_of
from strategies.tick import key_words

logger = logging.getLogger(__name__)

MODES = {
    State.PENDING: "forward",
    State.PROGRESSING: "forward",
    State.PAUSED: "paused",
    State.ROLLING_BACK: "rollback",
}
TRANSIENT_RETRY_SECONDS = 2.0
MIN_ANALYSIS_WAIT = 0.05  # never tick sooner than this for a measurement that is due


@dataclass
class TickResult:
    ran: bool  # False: not claimed (gone, finished, or another worker holds it)
    wait: float | None = None  # seconds until the next tick; None: no more ticks
    priority: bool = False
    changed_meanwhile: bool = False  # an operator command landed during the tick
    due: datetime | None = None  # the next tick's ``next_tick_at``, which it claims with


def owner_id() -> str:
    """``host:pid:random``, at most 64 characters (``Deployment.lease_owner``): a long host name
    (a Kubernetes pod's can be 253) keeps its start and a hash of the rest."""
    host = socket.gethostname()
    if len(host) > 40:
        host = f"{host[:31]}~{hashlib.sha256(host.encode()).hexdigest()[:8]}"
    return f"{host}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def role_state(
    status: TargetStatus, slot: str, min_ready: float, *, only: str | None = None
) -> RoleState:
    """How ``slot`` stands. With ``only``: instances of another release count as nothing (a
    slot left running by an earlier deployment is replaced, not mistaken for progress)."""
    s = status.slots.get(slot)
    if s is None:
        return RoleState(version=None, desired=0, ready=0, available=0, failed=0)
    if only is not None and s.version is not None and s.version != only:
        return RoleState(version=s.version, desired=0, ready=0, available=0, failed=0)
    return RoleState(
        version=s.version,
        desired=s.desired,
        ready=s.ready,
        available=s.available(min_ready),
        failed=s.failed,
    )


def observed_view(
    status: TargetStatus,
    d: Deployment | None,
    *,
    stable_slot: str | None = None,
    warm_slot: str | None = None,
) -> dict:
    """The slot picture stored on the Target for pages and the API. While ``d`` runs its slots
    are stable and canary; once it is over (``stable_slot``: the slot now serving), that slot is
    the stable one and the other has no role -- or is ``warm`` (``warm_slot``: the previous
    release kept at 0% traffic by the rollback window)."""
    if stable_slot is not None or d is None:
        roles = {stable_slot: "stable"} if stable_slot else {}
        if warm_slot:
            roles[warm_slot] = "warm"
    else:
        roles = {d.stable_slot: "stable", d.canary_slot: "canary", **experiment.roles(d, status)}
    total_ready = sum(s.ready for s in status.slots.values()) or 1
    view = {}
    for name, s in status.slots.items():
        if status.weights is None:
            weight = round(100 * s.ready / total_ready)
        else:
            weight = status.weights.get(name, 0)
        view[name] = {
            "role": roles.get(name, ""),
            "version": s.version,
            "desired": s.desired,
            "ready": s.ready,
            "weight": weight,
            "instances": [
                {
                    "id": i.id,
                    "version": i.version,
                    "state": i.state,
                    "address": i.address,
                    "restarts": i.restarts,
                    "reason": i.reason,
                }
                for i in s.instances
            ],
        }
    return view


def role_weights(view: dict, d: Deployment) -> dict:
    """The split by role; an experiment's slots (while they take requests) as ``experiment``."""
    out = {
        "stable": view.get(d.stable_slot, {}).get("weight", 0),
        "canary": view.get(d.canary_slot, {}).get("weight", 0),
    }
    shares = [
        slot.get("weight", 0)
        for name, slot in view.items()
        if name.startswith(experiment.PREFIX) and name not in (d.stable_slot, d.canary_slot)
    ]
    if sum(shares):
        out["experiment"] = sum(shares)
    return out


def tick(deployment_id: int, due: datetime | None = None) -> TickResult:
    """``due``: the ``next_tick_at`` this tick was scheduled for, if it was (a stale copy of a tick
    that has run since claims nothing: ``actions.claim``)."""
    owner = owner_id()
    d = actions.claim(deployment_id, owner, due=due)
    if d is None:
        return TickResult(ran=False)
    wait: float | None = None
    priority = d.state == State.ROLLING_BACK
    recorded_version = d.version
    with Lease(d.pk, owner, d.lease_generation) as lease:
        try:
            if d.state == State.PENDING and not actions.mark_started(d):
                return TickResult(ran=True, wait=0.0)
            wait, priority = _tick(d, lease)
            recorded_version = d.version
        except (LeaseLost, StaleFence) as exc:
            # another worker holds the deployment now: it decides; this tick acts on nothing more
            logger.warning("deployment %s: tick abandoned: %s", d.pk, exc)
            return TickResult(ran=False)
        except IntegrationError as exc:
            logger.warning("deployment %s: %s", d.pk, exc.message)
            actions.record_integration_error(d, exc.message, permanent=exc.permanent)
            # a slow or failing target's retries stay off the priority queue unless rolling back
            # (they would hold the priority worker that aborts and rollbacks count on)
            wait = TRANSIENT_RETRY_SECONDS
            priority = exc.permanent or d.state == State.ROLLING_BACK
            recorded_version = None
        except Exception as exc:  # noqa: BLE001 -- a bug: recorded, backed off, bounded
            wait, priority = failures.handle(d, exc)
            recorded_version = None
        finally:
            version, next_due = actions.release_claim(deployment_id, owner, wait=wait)
    changed = recorded_version is not None and version != recorded_version
    if changed:  # urgent only if what landed meanwhile was an abort or a rollback
        priority = Deployment.objects.filter(pk=deployment_id, state=State.ROLLING_BACK).exists()
    return TickResult(
        ran=True, wait=wait, priority=priority, changed_meanwhile=changed, due=next_due
    )


@dataclass(frozen=True)
class Hold:
    step_index: int
    message: str
    wait: float


def policy_hold(d: Deployment, decision, intent: str | None) -> Hold | None:
    """What the environment's policy holds, if anything: a step gate waiting for a person's
    approval (whatever the intent), or -- for an automatic promotion only: a person's promote
    passes the step it was given at -- a freeze window. Holding discards the decision; the next
    tick decides again."""
    index = decision.step_index
    if approvals.requires_step_approval(d, index) and not approvals.step_gate_open(d, index):
        return Hold(
            index,
            f"step {index + 1} ({decision.step}) waits for approval: an approver must approve it",
            2.0,
        )
    advancing = index > d.step_index or decision.outcome == "done"
    promoted_here = (d.checks or {}).get("promoted_at_step") == d.step_index
    automatic = ends_automatically(d.strategy, d.step_index)
    if advancing and automatic and not intent and not promoted_here:
        freeze = freezes.promotion_freeze(d)
        if freeze is not None:
            return Hold(d.step_index, f"held at step {d.step_index + 1}: {freeze.message}", 10.0)
    return None


def ends_automatically(spec: dict, step_index: int) -> bool:
    """Whether leaving step ``step_index`` is an automatic promotion (what a freeze holds): the
    end of a canary pause, analysis or experiment, the next rolling batch, a blue-green
    auto-promote. Moving on from a canary ``set_weight`` step is the step itself, not a
    promotion."""
    if spec.get("kind") != "canary":
        return True
    steps = spec.get("steps") or []
    if step_index >= len(steps):
        return False
    step = steps[step_index] or {}
    return "pause" in step or "analysis" in step or "experiment" in step


def _tick(d: Deployment, lease: Lease) -> tuple[float | None, bool]:
    """Returns (seconds to the next tick or None when finished, whether it is urgent)."""
    mode = MODES[d.state]
    spec = d.strategy
    started = time.monotonic()
    target = Fenced(integration_for(d.target), lease)
    early = routing_before_observing(spec, d.progress or {}, mode=mode)
    if early is not None:
        # a rollback whose routing does not depend on what the target looks like: from this call
        # on every new request goes to the old release; everything else comes after
        target.set_routing(routing_for(early, d))
        logger.info("deployment %s: routed to the old release in %.3fs", d.pk, _since(started))
    health = health_of(spec)
    status = target.status()
    min_ready = min_ready_of(spec)
    verdict = None
    if mode != "rollback":
        verdict = runs.evaluate(d)  # measurements due now: provider calls, no transaction
        logger.debug("deployment %s: analysis measured %.3fs into the tick", d.pk, _since(started))
        if verdict.runs and _changed(d):
            return 0.0, True  # an operator command landed while measuring: decide again
    obs = Observation(
        now=time.time(),
        stable=role_state(status, d.stable_slot, min_ready),
        canary=role_state(status, d.canary_slot, min_ready, only=d.release.version),
        checks=d.checks or {},
        analysis=verdict.runs if verdict is not None else {},
        experiment=experiment.observe(d, status, min_ready, role_state),
    )
    intent = d.intent or None
    # the rollback window: a success leaves the previous release warm (releases.actions.window)
    window = actions.window_seconds(d) if mode == "forward" else 0
    decision = decide(
        spec, d.progress or {}, obs, mode=mode, intent=intent, keep_previous=window > 0
    )
    if mode == "forward" and not decision.failure:
        hold = policy_hold(d, decision, intent)
        if hold is not None:  # the environment's policy holds the next step: act on nothing
            actions.record_hold(d, step_index=hold.step_index, message=hold.message)
            return hold.wait, False
    failure = decision.failure or ""
    if failure and mode != "rollback":
        _route_back(target, d, spec, decision, started)
    plan = decision.route_plan
    if plan is not None and plan == early:
        plan = None  # applied before looking

    slot_of = {"stable": d.stable_slot, "canary": d.canary_slot}
    release_of = {"stable": d.from_release, "canary": d.release}
    acted = False  # (the early routing, if any, is in ``status`` already)
    # an experiment's slots start (or resize) before routing gives them requests
    acted = experiment.start(target, d, status, decision.experiment, health) or acted
    # Order matters for safety: route away from a slot before shrinking it, grow before routing.
    route_first = plan is not None and _routes_away(plan, decision, obs)
    if route_first:
        target.set_routing(routing_for(plan, d))
        acted = True
    for role in ("canary", "stable"):
        if role not in decision.scale:
            continue
        replicas = decision.scale[role]
        release = release_of[role]
        slot = slot_of[role]
        if release is None:  # first deployment: nothing stable to scale
            if replicas:
                logger.warning("deployment %s: no stable release to scale up", d.pk)
            if slot in status.slots and status.slots[slot].desired:
                target.remove_slot(slot)
            continue
        if replicas == 0 and slot in status.slots and status.slots[slot].desired == 0:
            continue
        target.ensure_slot(slot, release_ref(release, health), replicas)
        acted = True
    if plan is not None and not route_first:
        target.set_routing(routing_for(plan, d))
        acted = True
    # and the ones not wanted any more go once routing has taken their requests off them
    acted = experiment.remove(target, d, status, decision.experiment) or acted
    if acted:
        status = target.status()
    view = observed_view(status, d)
    checks = None
    if decision.run_smoke:  # after acting: the preview is exposed and its instances are ready
        result = smoke.run(decision.run_smoke, smoke.urls_for(status, d.canary_slot))
        checks = {**(d.checks or {}), "smoke": result}
    started_runs = False
    if decision.start_analysis and not failure:
        failure = _start_analyses(d, decision.start_analysis)
        started_runs = not failure
        if failure:
            _route_back(target, d, spec, decision, started)
    message = failure if failure and not decision.failure else decision.message

    new_state = None
    if failure and mode != "rollback":
        new_state = State.ROLLING_BACK
    elif decision.outcome == "done" and mode == "forward":
        new_state = State.SUCCEEDED
    elif decision.outcome == "restored" and mode == "rollback":
        new_state = d.rollback_outcome or State.ROLLED_BACK
    elif decision.waiting_for_promotion and mode == "forward" and d.state == State.PROGRESSING:
        new_state = State.PAUSED
    if new_state == State.SUCCEEDED:  # the new release's slot is the stable one from now on
        warm = d.stable_slot if window > 0 else None
        view = observed_view(status, d, stable_slot=d.canary_slot, warm_slot=warm)
    elif new_state in (State.ROLLED_BACK, State.FAILED, State.ABORTED):
        view = observed_view(status, d, stable_slot=d.stable_slot)
    recorded = actions.record_tick(
        d,
        observed=view,
        endpoint=status.endpoint,
        progress=decision.progress,
        step_index=decision.step_index,
        step=decision.step,
        weights=role_weights(view, d),
        message=message,
        new_events=decision.events,
        consumed_intent=intent or "",
        new_state=new_state,
        failure=failure,
        checks=checks,
        cleanup_in=decision.cleanup_after if new_state else None,
        window_seconds=window,
    )
    logger.debug("tick %s took %.3fs", d.pk, _since(started))
    if not recorded:
        lease.check()  # LeaseLost if that is why: another worker has the deployment now
        return 0.0, True  # an operator command landed during the tick: decide again
    if (
        new_state == State.ROLLING_BACK
        or mode == "rollback"
        or (new_state and new_state != State.PAUSED)
    ):
        runs.stop(d)  # rolling back or finished: what still measures is judged as it stands
    elif decision.stop_analysis:
        for key in decision.stop_analysis:
            runs.stop(d, key)
    if new_state == State.ROLLING_BACK:
        return 0.0, True
    if new_state and new_state != State.PAUSED:
        return None, False
    if started_runs:  # open the new runs' windows now, right after the routing they measure
        verdict = runs.evaluate(d)
    wait = _analysis_wait(decision.wait, verdict)
    if new_state == State.PAUSED:
        return wait, False
    if checks is not None:
        return 0.0, False  # judge the smoke checks at once
    return wait, mode == "rollback"


def _changed(d: Deployment) -> bool:
    """Whether the row moved on since this tick claimed it (an operator command landed)."""
    return Deployment.objects.filter(pk=d.pk).values_list("version", flat=True).first() != d.version


def _route_back(target, d: Deployment, spec: dict, decision: Decision, started: float) -> None:
    """The rollout failed: for the kinds that switch back, send every new request to the old
    release now -- the rollback's first routing change, before anything is recorded. The
    rollback ticks that follow apply it again (idempotent) and do the rest."""
    plan = routing_before_observing(spec, decision.progress, mode="rollback")
    if plan is None:
        return
    decided = _since(started)
    target.set_routing(routing_for(plan, d))
    logger.info(
        "deployment %s failed (%s): routed to the old release %.3fs into the tick, %.3fs after "
        "the decision",
        d.pk,
        decision.failure or "an analysis could not start",
        _since(started),
        _since(started) - decided,
    )


def _start_analyses(d: Deployment, requests: list[dict]) -> str:
    """Start the runs a decision asks for; a failure's reason if one cannot start (its template
    was deleted since the spec was validated, an argument is missing), else ""."""
    for request in requests:
        arms = experiment.arms(d, request)  # an experiment's run compares its own slots
        try:
            runs.start(
                d,
                request["template"],
                experiment.args(d, request),
                key=request["key"],
                step_index=request.get("step_index"),
                overrides=request.get("overrides"),
                **({"arms": arms} if arms else {}),
            )
        except DomainError as exc:
            key = key_words(request["key"])
            return f"analysis {request['template']!r} ({key}) could not start: {exc}"
    return ""


def _analysis_wait(wait: float, verdict) -> float:
    """``wait``, or sooner when a running analysis' next measurement is due before then."""
    if verdict is None or verdict.next_at is None:
        return wait
    return min(wait, max(MIN_ANALYSIS_WAIT, verdict.next_at - time.time()))


def routing_for(plan: RoutePlan, d: Deployment) -> Routing:
    """The engine's routing by role as the target's routing by slot."""
    rules = plan.rules or {}
    slot_of = {
        "stable": d.stable_slot,
        "canary": d.canary_slot,
        **experiment.slot_of_roles(d, plan.weights),
    }
    return Routing(
        weights=_slot_weights(plan.weights, slot_of),
        preview_slot=d.canary_slot if plan.preview else None,
        stable_slot=d.stable_slot,
        canary_slot=d.canary_slot,
        header=rules.get("header"),
        cookie=rules.get("cookie"),
        sticky_key=rules.get("sticky_key"),
        header_routes=tuple(rules["header_routes"]) if rules.get("header_routes") else None,
        mirror_routes=tuple(rules["mirror_routes"]) if rules.get("mirror_routes") else None,
    )


def _routes_away(plan: RoutePlan, decision: Decision, obs: Observation) -> bool:
    """True when the new routing takes all traffic off a role, or some off a role that shrinks
    this tick: then it goes before the scale changes, so requests leave before instances do."""
    if plan.weights is None:
        return False
    for role, weight in plan.weights.items():
        if role not in ("stable", "canary"):
            continue  # an experiment's slot: started before routing, removed after
        shrinks = decision.scale.get(role, getattr(obs, role).desired) < getattr(obs, role).desired
        if weight == 0 or shrinks:
            return True
    return False


def _slot_weights(weights: dict | None, slot_of: dict) -> dict | None:
    if weights is None:
        return None
    return {slot_of[role]: int(w) for role, w in weights.items() if role in slot_of}


def _since(started: float) -> float:
    return time.monotonic() - started
