"""Flag pages, live: ``/ws/flags/<key>/`` (Channels, on ``releases.live``'s consumer machinery:
session sign-in, a snapshot on connect, permission re-checked while connected, the same close
codes) sends ``{"type": "flag", "data": flag_dict}`` on connect and after every committed change
to the flag (on/off, strategies, variants, the kill switch, plan moves, experiments).

``flag_dict``: ``{"key", "environments": [{"environment", "enabled", "killed", "serving",
"killed_by", "kill_reason", "version", "plan": {"state", "step", "percent", "message",
"deployment", "analysis"} | null}],
"history": [{"at", "actor", "action", "object"}] (newest first, 10)}``.
"""

from __future__ import annotations

import logging

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.db import transaction
from django.db.models import Q
from django.urls import path

from flags import analysis, governance
from flags.models import Flag, FlagSetting, RolloutPlan
from releases.errors import Forbidden, NotFound
from releases.live.consumers import FORBIDDEN, NOT_FOUND, LiveConsumer
from releases.live.events import envelope, group_send
from releases.models import AuditEvent, Environment

logger = logging.getLogger(__name__)


def flag_group(flag_id: int) -> str:
    return f"flag.{flag_id}"


def flag_dict(flag: Flag) -> dict:
    settings = {s.environment_id: s for s in FlagSetting.objects.filter(flag=flag)}
    plans = {}
    for plan in RolloutPlan.objects.filter(flag=flag).order_by("id"):  # the latest wins
        plans[plan.environment_id] = plan
    environments = []
    for env in Environment.objects.order_by("order"):
        s, plan = settings.get(env.pk), plans.get(env.pk)
        environments.append(
            {
                "environment": env.slug,
                "enabled": bool(s and s.enabled),
                "killed": bool(s and s.killed),
                "serving": bool(s and s.serving),
                "killed_by": (s.killed_by or None) if s else None,
                "kill_reason": (s.kill_reason or None) if s else None,
                "version": s.version if s else 0,
                "plan": {
                    "state": plan.state,
                    "step": plan.step_index,
                    "percent": plan.percent,
                    "message": plan.message,
                    "deployment": plan.deployment_id,
                    "analysis": analysis.summary(plan),
                }
                if plan
                else None,
            }
        )
    setting_ids = [str(s.pk) for s in settings.values()]
    history = AuditEvent.objects.filter(
        Q(object_type="flag", object_id=str(flag.pk))
        | Q(object_type="flagsetting", object_id__in=setting_ids)
    ).order_by("-id")[:10]
    return {
        "key": flag.key,
        "environments": environments,
        "history": [
            {
                "at": e.created_at.isoformat(),
                "actor": e.actor_name,
                "action": e.action,
                "object": e.object_repr,
            }
            for e in history
        ],
    }


def publish(flag_id: int) -> None:
    """After commit: the flag's state to every open page of it (a dead channel layer never
    fails the change)."""

    def send():
        flag = Flag.objects.filter(pk=flag_id).first()
        layer = get_channel_layer()
        if flag is None or layer is None:
            return
        try:
            message = {"type": "flag", "data": flag_dict(flag)}
            group_send(flag_group(flag_id), envelope([message]))
        except Exception:
            logger.warning("could not publish flag %s", flag_id, exc_info=True)

    transaction.on_commit(send)


class FlagConsumer(LiveConsumer):
    """``/ws/flags/<key>/``: the flag on connect, then ``flag`` messages."""

    flag_id: int | None = None

    @property
    def key(self) -> str:
        return self.scope["url_route"]["kwargs"]["key"]

    def page_key(self):
        return self.key

    def page_refused(self) -> int | None:
        try:
            governance.check(self.scope["user"], "flag.view")
        except NotFound:
            return NOT_FOUND
        except Forbidden:
            return FORBIDDEN
        flag = Flag.objects.filter(key=self.key).first()
        if flag is None:
            return NOT_FOUND
        self.flag_id = flag.pk
        return None

    @database_sync_to_async
    def find_groups(self) -> tuple[list[str], int | None]:
        refused = self.page_refused()
        return ([], refused) if refused is not None else ([flag_group(self.flag_id)], None)

    @database_sync_to_async
    def snapshot(self) -> list[dict]:
        flag = Flag.objects.filter(pk=self.flag_id).first()
        return [{"type": "flag", "data": flag_dict(flag)}] if flag else []


websocket_urlpatterns = [path("ws/flags/<str:key>/", FlagConsumer.as_asgi())]
