"""What the actions share: the states each operator command may be given in, the row lock, the
version-checked write, the deployment event, and the tick asked for after commit."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from releases import queue
from releases.actors import Actor
from releases.errors import (
    ApprovalRequired,
    Conflict,
    NotFound,
)
from releases.governance import approvals
from releases.models import (
    Deployment,
    DeploymentEvent,
    State,
)

DEFAULT_STRATEGY = {"kind": "rolling", "replicas": 2}
SLOTS = ("blue", "green")
# a tick's claim: short, and renewed by the tick's heartbeat while it runs, so a killed worker's
# claim lapses within LEASE_SECONDS (releases.reconcile.lease)
LEASE_SECONDS = 2.0

# operator command -> states it may be given in
ALLOWED = {
    "promote": (State.PROGRESSING, State.PAUSED),
    "pause": (State.PENDING, State.PROGRESSING),
    "resume": (State.PAUSED,),
    "abort": (State.PENDING, State.AWAITING_APPROVAL, State.PROGRESSING, State.PAUSED),
    "rollback": (State.PENDING, State.PROGRESSING, State.PAUSED, State.SUCCEEDED),
    # governance (releases.governance.policy): a deployment waiting for approvals; approve/reject
    # also
    # decide a canary step gate while progressing or paused (approvals.open_gate says which)
    "approve": (State.AWAITING_APPROVAL,),
    "reject": (State.AWAITING_APPROVAL,),
}


# --- helpers ----------------------------------------------------------------------------------


def record_event(d: Deployment, kind: str, message: str, actor: Actor, data: dict | None = None):
    return DeploymentEvent.objects.create(
        deployment=d, kind=kind, message=message, data=data or {}, actor=actor.name
    )


def enqueue_tick(deployment_id: int, *, priority: bool = False) -> None:
    """After commit, ask a worker to tick the deployment. A broker outage loses nothing: the
    intent is in the database and the periodic sweep will enqueue the tick once Redis is back."""
    transaction.on_commit(lambda: queue.enqueue_tick(deployment_id, priority=priority))


def locked(deployment_id: int) -> Deployment:
    # A short critical section: read state and version under the row lock, write, commit.
    d = (
        Deployment.objects.select_for_update(of=("self",))
        .select_related("target__service", "target__environment", "release", "from_release")
        .filter(pk=deployment_id)
        .first()
    )
    if d is None:
        raise NotFound(f"Deployment {deployment_id} does not exist.")
    return d


def save_checked(d: Deployment, **fields) -> None:
    """Write ``fields`` with a version check (the row is locked, so this only guards bugs)."""
    fields["version"] = d.version + 1
    fields["updated_at"] = timezone.now()
    updated = Deployment.objects.filter(pk=d.pk, version=d.version).update(**fields)
    if updated != 1:
        raise Conflict(f"Deployment {d.pk} changed while it was being updated; try again.")
    for name, value in fields.items():
        setattr(d, name, value)


def check_allowed(d: Deployment, command: str) -> None:
    allowed = ALLOWED[command]
    if d.state == State.AWAITING_APPROVAL and command in ("promote", "resume"):
        status = approvals.approval_status(d)
        raise ApprovalRequired(
            f"Cannot {command} deployment {d.pk}: it is awaiting approval "
            f"({status.summary()}); an approver must approve it first.",
            details={
                "state": d.state,
                "required": status.required,
                "approved_by": status.approved_by,
            },
        )
    if d.state not in allowed:
        states = ", ".join(str(s) for s in allowed)
        raise Conflict(
            f"Cannot {command} deployment {d.pk}: it is {d.state} ({command} needs {states}).",
            details={"state": d.state, "allowed_states": [str(s) for s in allowed]},
        )


def other_slot(slot: str) -> str:
    return SLOTS[1] if slot == SLOTS[0] else SLOTS[0]
