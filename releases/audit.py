"""The audit trail: one AuditEvent per action, from every channel."""

from __future__ import annotations

from typing import Any

from releases.actors import Actor
from releases.models import AuditEvent


def record(actor: Actor, action: str, obj: Any, data: dict | None = None) -> AuditEvent:
    return AuditEvent.objects.create(
        actor=actor.user,
        actor_name=actor.name,
        channel=actor.channel,
        action=action,
        object_type=obj._meta.model_name,
        object_id=str(obj.pk),
        object_repr=str(obj)[:300],
        data=data or {},
        source_address=actor.address,
    )
