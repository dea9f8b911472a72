"""One reconcile tick: claim, observe, decide (pure), act (idempotent), record, reschedule.

No transaction or row lock is held while the integration is called: the lease (a conditional
update on the row) keeps other workers off, the decision comes from ``strategies.engine``, and the
result is written through ``releases.commands`` with a version check, so an operator command that
lands mid-tick wins and the next tick decides again.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from dataclasses import dataclass

from integrations.base import IntegrationError, TargetStatus
from releases import commands
from releases.models import Deployment, State
from releases.targets import integration_for, release_ref
from strategies.engine import Observation, RoleState, decide
from strategies.spec import health_of, min_ready_of

logger = logging.getLogger(__name__)

MODES = {
    State.PENDING: "forward",
    State.PROGRESSING: "forward",
    State.PAUSED: "paused",
    State.ROLLING_BACK: "rollback",
}
TRANSIENT_RETRY_SECONDS = 2.0


@dataclass
class TickResult:
    ran: bool  # False: not claimed (gone, finished, or another worker holds it)
    wait: float | None = None  # seconds until the next tick; None: no more ticks
    priority: bool = False
    changed_meanwhile: bool = False  # an operator command landed during the tick


def owner_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def role_state(status: TargetStatus, slot: str, min_ready: float) -> RoleState:
    s = status.slots.get(slot)
    if s is None:
        return RoleState(version=None, desired=0, ready=0, available=0, failed=0)
    return RoleState(
        version=s.version,
        desired=s.desired,
        ready=s.ready,
        available=s.available(min_ready),
        failed=s.failed,
    )


def observed_view(status: TargetStatus, d: Deployment) -> dict:
    """The slot picture stored on the Target for pages and the API."""
    roles = {d.stable_slot: "stable", d.canary_slot: "canary"}
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
                }
                for i in s.instances
            ],
        }
    return view


def role_weights(view: dict, d: Deployment) -> dict:
    return {
        "stable": view.get(d.stable_slot, {}).get("weight", 0),
        "canary": view.get(d.canary_slot, {}).get("weight", 0),
    }


def tick(deployment_id: int) -> TickResult:
    owner = owner_id()
    d = commands.claim(deployment_id, owner)
    if d is None:
        return TickResult(ran=False)
    wait: float | None = None
    priority = d.state == State.ROLLING_BACK
    recorded_version = d.version
    try:
        if d.state == State.PENDING and not commands.mark_started(d):
            return TickResult(ran=True, wait=0.0)
        wait, priority = _tick(d)
        recorded_version = d.version
    except IntegrationError as exc:
        logger.warning("deployment %s: %s", d.pk, exc.message)
        commands.record_integration_error(d, exc.message, permanent=exc.permanent)
        wait, priority = TRANSIENT_RETRY_SECONDS, True
        recorded_version = None
    finally:
        version = commands.release_claim(deployment_id, owner, wait=wait)
    changed = recorded_version is not None and version != recorded_version
    return TickResult(ran=True, wait=wait, priority=priority, changed_meanwhile=changed)


def _tick(d: Deployment) -> tuple[float | None, bool]:
    """Returns (seconds to the next tick or None when finished, whether it is urgent)."""
    mode = MODES[d.state]
    spec = d.strategy
    health = health_of(spec)
    target = integration_for(d.target)
    started = time.monotonic()
    status = target.status()
    min_ready = min_ready_of(spec)
    obs = Observation(
        now=time.time(),
        stable=role_state(status, d.stable_slot, min_ready),
        canary=role_state(status, d.canary_slot, min_ready),
    )
    intent = d.intent or None
    decision = decide(spec, d.progress or {}, obs, mode=mode, intent=intent)

    slot_of = {"stable": d.stable_slot, "canary": d.canary_slot}
    release_of = {"stable": d.from_release, "canary": d.release}
    acted = False
    # Order matters for safety: route away from a slot before shrinking it, grow before routing.
    if decision.route and _routes_away(decision):
        target.set_weights(_slot_weights(decision.weights, slot_of))
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
    if decision.route and not _routes_away(decision):
        target.set_weights(_slot_weights(decision.weights, slot_of))
        acted = True
    if acted:
        status = target.status()
    view = observed_view(status, d)

    new_state = None
    if decision.failure and mode == "forward":
        new_state = State.ROLLING_BACK
    elif decision.outcome == "done" and mode == "forward":
        new_state = State.SUCCEEDED
    elif decision.outcome == "restored" and mode == "rollback":
        new_state = d.rollback_outcome or State.ROLLED_BACK
    recorded = commands.record_tick(
        d,
        observed=view,
        endpoint=status.endpoint,
        progress=decision.progress,
        step_index=decision.step_index,
        step=decision.step,
        weights=role_weights(view, d),
        message=decision.message,
        new_events=decision.events,
        consumed_intent=intent or "",
        new_state=new_state,
        failure=decision.failure or "",
    )
    logger.debug("tick %s took %.3fs", d.pk, time.monotonic() - started)
    if not recorded:
        return 0.0, True
    if new_state == State.ROLLING_BACK:
        return 0.0, True
    if new_state:
        return None, False
    if decision.waiting_for_promotion and d.state == State.PROGRESSING:
        return max(decision.wait, 1.0), False
    return decision.wait, mode == "rollback"


def _routes_away(decision) -> bool:
    """True when the new weights take traffic off a role (so they go first)."""
    return decision.weights is not None and (
        decision.weights.get("canary", 0) == 0 or decision.weights.get("stable", 0) == 0
    )


def _slot_weights(weights: dict | None, slot_of: dict) -> dict | None:
    if weights is None:
        return None
    return {slot_of[role]: int(w) for role, w in weights.items() if role in slot_of}
