"""Live updates over the channel layer, published after commit.

WebSocket messages (the only shapes a browser receives), each ``{"type": ..., "data": ...}``:

- ``deployment``: the deployment as ``serializers.deployment_dict`` gives it, after any change.
- ``event``: one DeploymentEvent as ``serializers.event_dict`` gives it (the time line).
- ``target``: ``serializers.target_dict`` of the deployment's target (slots, instances, weights).
- ``board.cell``: ``{"service", "environment", "version", "deployment": {...} | null}``.

Groups: ``deployment.<id>`` for one deployment page, ``board`` for the matrix.
"""

from __future__ import annotations

import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)

BOARD_GROUP = "board"


def deployment_group(deployment_id: int) -> str:
    return f"deployment.{deployment_id}"


def _send(group: str, message: dict) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(group, {"type": "relay", "message": message})
    except Exception:  # a dead channel layer must never fail a command or a tick
        logger.warning("could not publish %s to %s", message.get("type"), group, exc_info=True)


def publish_deployment(deployment_id: int, event_ids: list[int] | None = None) -> None:
    """After commit: send the deployment, its new events and its board cell to subscribers."""

    def send():
        from releases.models import Deployment, DeploymentEvent
        from releases.serializers import deployment_dict, event_dict, target_dict

        d = (
            Deployment.objects.select_related(
                "target__service", "target__environment", "release", "from_release", "created_by"
            )
            .filter(pk=deployment_id)
            .first()
        )
        if d is None:
            return
        group = deployment_group(d.pk)
        data = deployment_dict(d)
        _send(group, {"type": "deployment", "data": data})
        if event_ids:
            for e in DeploymentEvent.objects.filter(pk__in=event_ids).order_by("id"):
                _send(group, {"type": "event", "data": event_dict(e)})
        _send(group, {"type": "target", "data": target_dict(d.target)})
        _send(BOARD_GROUP, {"type": "board.cell", "data": board_cell(d.target, d)})

    transaction.on_commit(send)


def board_cell(target, deployment=None) -> dict:
    from releases.serializers import deployment_dict

    return {
        "service": target.service.slug,
        "environment": target.environment.slug,
        "version": target.stable_release.version if target.stable_release_id else None,
        "deployment": deployment_dict(deployment) if deployment is not None else None,
    }
