"""A deployment and one of its events rendered as the plain ``Notice`` every transport sends:
the API's deployment object, the event, the buttons the state allows, who did what."""

from __future__ import annotations

from django.conf import settings
from django.utils import timezone

from integrations.notify.base import Notice
from notifications.triggers import TRIGGERS
from releases.actions import ALLOWED
from releases.governance import approvals
from releases.live.presenters import deployment_dict, event_dict
from releases.models import Deployment, DeploymentEvent, State

HISTORY_KINDS = ("created", "state", "approval", "intent", "freeze_override", "retry")
HISTORY_LINES = 8


def allowed_actions(d: Deployment) -> tuple[str, ...]:
    """The buttons to show: what the state allows (the actions still check roles when clicked)."""
    if d.state == State.AWAITING_APPROVAL:
        return ("approve", "reject")
    actions = []
    if d.state in (State.PROGRESSING, State.PAUSED) and approvals.gate_waits(d):
        actions += ["approve", "reject"]
    for name in ("promote", "pause", "abort", "rollback"):
        if d.state in ALLOWED[name]:
            actions.append(name)
    if d.state == State.SUCCEEDED and not d.from_release_id:
        actions.remove("rollback")  # the first release: nothing to roll back to
    return tuple(actions)


def history(d: Deployment) -> tuple[str, ...]:
    rows = (
        DeploymentEvent.objects.filter(deployment=d, kind__in=HISTORY_KINDS)
        .order_by("-id")
        .values_list("created_at", "message")[:HISTORY_LINES]
    )
    # the messages name who acted ("alice paused the deployment")
    return tuple(f"{at:%H:%M:%S} {message}" for at, message in reversed(rows))


def page_url(d: Deployment) -> str:
    return settings.SWITCHYARD_PUBLIC_URL.rstrip("/") + f"/deployments/{d.pk}/"


def title_of(d: Deployment) -> str:
    state = str(d.state).replace("_", " ")
    return f"{d.target.service.slug} {d.release.version} → {d.target.environment.slug}: {state}"


def deployments():
    return Deployment.objects.select_related(
        "target__service", "target__environment", "release", "from_release", "created_by"
    )


def for_event(notice_id: str, trigger: str, d: Deployment, event: DeploymentEvent | None) -> Notice:
    """What happened (``event``) and where the deployment stands now."""
    if event is None:
        event = DeploymentEvent.objects.filter(deployment=d).order_by("-id").first()
    return Notice(
        id=notice_id,
        trigger=trigger,
        title=title_of(d),
        text=event.message if event else d.message,
        url=page_url(d),
        deployment=deployment_dict(d),
        event=event_dict(event) if event else None,
        actions=allowed_actions(d) if d.is_active or d.state == State.SUCCEEDED else (),
        history=history(d),
        at=(event.created_at if event else timezone.now()).isoformat(),
    )


def test_notice(notice_id: str, channel_name: str, who: str) -> Notice:
    return Notice(
        id=notice_id,
        trigger="test",
        title="Test message from Switchyard",
        text=f"{who} sent this to check the channel {channel_name!r}. Nothing needs doing.",
        url=settings.SWITCHYARD_PUBLIC_URL.rstrip("/") + "/notifications/",
        at=timezone.now().isoformat(),
    )


def describe(trigger: str) -> str:
    return TRIGGERS.get(trigger, trigger)
