"""WebSocket consumers: the board and one deployment's page.

Each joins its group (``releases.events``), sends a snapshot on connect so that a page re-syncs
after any gap, then relays what ``releases.events`` publishes, re-checking on every message that
the user may still see it. Close codes: 4401 not signed in (or no longer), 4404 no such deployment.
Browsers only listen: anything they send is ignored.
"""

from __future__ import annotations

import time
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.contrib.auth import get_user_model

from releases.events import BOARD_GROUP, board_cell, deployment_group
from releases.models import ACTIVE_STATES, Deployment, DeploymentEvent, Target
from releases.serializers import deployment_dict, event_dict, target_dict

UNAUTHENTICATED = 4401
NOT_FOUND = 4404
# how often the user and session are re-read from the database while relaying
RECHECK_SECONDS = 30.0
# events sent on (re)connect to fill a gap (``?after=<last event id seen>``)
MAX_CATCH_UP_EVENTS = 200


class LiveConsumer(AsyncJsonWebsocketConsumer):
    """Shared behaviour: authenticate, join one group, snapshot, relay."""

    group: str | None = None
    closed: bool = False
    checked_at: float = 0.0

    async def connect(self):
        # Accept first so that the browser sees our close code (a refused handshake is just 1006).
        await self.accept()
        if not self.user_ok():
            await self.shut(UNAUTHENTICATED)
            return
        group = await self.find_group()
        if group is None:
            await self.shut(NOT_FOUND)
            return
        # Join before reading the snapshot: a change committed meanwhile arrives after it.
        self.group = group
        await self.channel_layer.group_add(group, self.channel_name)
        self.checked_at = time.monotonic()
        for message in await self.snapshot():
            await self.send_json(message)

    async def disconnect(self, code):
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)
            self.group = None

    async def receive(self, text_data=None, bytes_data=None, **kwargs):
        return  # the browser only listens

    async def relay(self, event):
        """A message published by ``releases.events``: forward it if the user may still see it."""
        if self.closed:
            return
        if not await self.still_allowed():
            await self.shut(UNAUTHENTICATED)
            return
        await self.send_json(event["message"])

    # --- permission -------------------------------------------------------------------------

    def user_ok(self) -> bool:
        user = self.scope.get("user")
        return bool(user is not None and user.is_authenticated and user.is_active)

    async def still_allowed(self) -> bool:
        if not self.user_ok():
            return False
        if time.monotonic() - self.checked_at < RECHECK_SECONDS:
            return True
        ok = await self.user_and_session_alive()
        self.checked_at = time.monotonic()
        return ok

    @database_sync_to_async
    def user_and_session_alive(self) -> bool:
        """The user is still active and has not signed out (the session still exists)."""
        user = self.scope["user"]
        if not get_user_model().objects.filter(pk=user.pk, is_active=True).exists():
            return False
        session = self.scope.get("session")
        key = getattr(session, "session_key", None)
        return key is None or session.exists(key)

    async def shut(self, code: int) -> None:
        self.closed = True
        await self.disconnect(code)
        await self.close(code=code)

    # --- per page ---------------------------------------------------------------------------

    async def find_group(self) -> str | None:
        raise NotImplementedError

    async def snapshot(self) -> list[dict]:
        raise NotImplementedError


class BoardConsumer(LiveConsumer):
    """``/ws/board/``: every cell on connect, then ``board.cell`` messages."""

    async def find_group(self) -> str | None:
        return BOARD_GROUP

    @database_sync_to_async
    def snapshot(self) -> list[dict]:
        active = {
            d.target_id: d
            for d in Deployment.objects.filter(state__in=ACTIVE_STATES).select_related(
                "release", "from_release", "created_by"
            )
        }
        cells = []
        for target in Target.objects.select_related("service", "environment", "stable_release"):
            d = active.get(target.pk)
            if d is not None:
                d.target = target
            cells.append({"type": "board.cell", "data": board_cell(target, d)})
        return cells


class DeploymentConsumer(LiveConsumer):
    """``/ws/deployments/<id>/``: the deployment, missed events and its target on connect,
    then ``deployment``, ``event`` and ``target`` messages."""

    @property
    def deployment_id(self) -> int:
        return int(self.scope["url_route"]["kwargs"]["deployment_id"])

    @database_sync_to_async
    def find_group(self) -> str | None:
        if not Deployment.objects.filter(pk=self.deployment_id).exists():
            return None
        return deployment_group(self.deployment_id)

    def after_event(self) -> int | None:
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        try:
            return int(query["after"][0])
        except (KeyError, IndexError, ValueError):
            return None

    @database_sync_to_async
    def snapshot(self) -> list[dict]:
        d = (
            Deployment.objects.select_related(
                "target__service",
                "target__environment",
                "target__stable_release",
                "release",
                "from_release",
                "created_by",
            )
            .filter(pk=self.deployment_id)
            .first()
        )
        if d is None:
            return []
        messages = [{"type": "deployment", "data": deployment_dict(d)}]
        after = self.after_event()
        if after is not None:
            missed = DeploymentEvent.objects.filter(deployment=d, pk__gt=after).order_by("-id")
            messages += [
                {"type": "event", "data": event_dict(e)}
                for e in reversed(missed[:MAX_CATCH_UP_EVENTS])
            ]
        messages.append({"type": "target", "data": target_dict(d.target)})
        return messages
