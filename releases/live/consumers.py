"""WebSocket consumers: the board and one deployment's page.

Each joins its groups (``releases.live.events``), sends a snapshot on connect so that a page
re-syncs
after any gap, then relays what ``releases.live.events`` publishes. Permission is checked for every
message relayed: the user must still be signed in and active and may still see what the message
is about (``releases.api.auth.authorize``, where roles plug in). The database part of that
check is cached for ``RECHECK_SECONDS`` per connection, so a relay costs no query in the common
case and a revoked user stops hearing within that time. The interval is jittered per connection,
so that dashboards which connected together (after a web restart, say) do not all re-read at the
same message, and connections of one session to one page in a process share one re-read (a
thousand tabs of a wall screen cost one query, not a thousand, in front of the same message).

Close codes: 4401 not signed in (or no longer), 4403 may not see it, 4404 no such deployment.
Browsers only listen: anything they send is ignored.

Query parameters of ``/ws/deployments/<id>/`` (both optional, for a page that reconnects):
``after=<last event id seen>`` sends the events missed, ``since=<time of the last metrics sample
seen>`` sends only the newer samples (otherwise the whole 15-minute window, with ``replace``).
"""

from __future__ import annotations

import asyncio
import random
import time
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.contrib.auth import get_user_model

from releases.errors import Forbidden, NotFound
from releases.governance import policy
from releases.live import charts
from releases.live.events import BOARD_GROUP, batch, deployment_group, metrics_group
from releases.live.hub import hub
from releases.live.presenters import (
    cell_dict,
    deployment_dict,
    event_dict,
    load_cells,
    target_dict,
)
from releases.models import Deployment, DeploymentEvent, Target

UNAUTHENTICATED = 4401
FORBIDDEN = 4403
NOT_FOUND = 4404
# how often the user, the session and what they may see are re-read from the database (each
# connection waits between 75% and 100% of it, at random)
RECHECK_SECONDS = 30.0
RECHECK_JITTER = 0.25
# re-reads in flight or recent, per process: (event loop, what is checked) -> (started, task)
_rechecks: dict[tuple, tuple[float, asyncio.Task]] = {}
# events sent on (re)connect to fill a gap (``?after=<last event id seen>``)
MAX_CATCH_UP_EVENTS = 200


def may(user, action: str, obj=None) -> int | None:
    """None if ``user`` may do ``action`` on ``obj``, else the close code saying why not (the
    same ``releases.governance.policy.check`` the API and the pages ask; a WebSocket is signed
    in by session, so no token narrows it)."""
    try:
        policy.check(user, action, obj)
    except NotFound:
        return NOT_FOUND
    except Forbidden:
        return FORBIDDEN
    return None


class LiveConsumer(AsyncJsonWebsocketConsumer):
    """Shared behaviour: authenticate, join groups, snapshot, relay."""

    groups_joined: tuple[str, ...] = ()
    closed: bool = False
    checked_at: float = 0.0
    recheck_after: float = RECHECK_SECONDS

    async def connect(self):
        # Accept first so that the browser sees our close code (a refused handshake is just 1006).
        await self.accept()
        if not self.user_ok():
            await self.shut(UNAUTHENTICATED)
            return
        groups, refused = await self.find_groups()
        if refused is not None:
            await self.shut(refused)
            return
        # Join before reading the snapshot: a change committed meanwhile arrives after it.
        self.groups_joined = tuple(groups)
        for group in self.groups_joined:
            await hub(self.channel_layer).join(group, self)
        self.checked(time.monotonic())
        for message in await self.snapshot():
            await self.send_json(message)

    async def disconnect(self, code):
        groups, self.groups_joined = self.groups_joined, ()
        for group in groups:
            await hub(self.channel_layer).leave(group, self)

    async def receive(self, text_data=None, bytes_data=None, **kwargs):
        return  # the browser only listens

    async def relay(self, event):
        """Messages published by ``releases.live.events`` (an ``envelope``), handed over by this
        process' ``hub``: send those the user may still see, in one WebSocket frame, as they
        were encoded once for every subscriber. Not through channels' ``dispatch``, which runs
        ``close_old_connections`` on the one thread-sensitive executor before every message: for
        a publish to a thousand dashboards, a thousand thread hops in a row (py-spy on
        ``bench/ws.py``: a quarter of the web's time while relaying). A relay uses no database
        connection; its recheck is a ``database_sync_to_async`` call, which closes old ones."""
        if self.closed:
            return
        refused = await self.still_allowed()
        if refused is not None:
            await self.shut(refused)
            return
        text = event.get("batch")
        if self.filters or text is None:
            frames = [
                frame
                for frame, about in zip(event["frames"], event["about"], strict=True)
                if not self.filters or await self.may_receive(about)
            ]
            text = batch(frames) if frames else None
        if text is not None:
            await self.frame_send()({"type": "websocket.send", "text": text})

    def frame_send(self):
        """The ASGI send for relayed frames: the server's own, beneath channels' session
        middleware when it is there. The middleware saves the session on ``http.response.start``
        only, yet reads the session's state for every message it passes on -- for each frame of
        each publish to each dashboard. Falls back to the consumer's send."""
        wrapper = getattr(self.base_send, "__self__", None)
        return getattr(wrapper, "real_send", None) or self.base_send

    # --- permission -------------------------------------------------------------------------

    def user_ok(self) -> bool:
        user = self.scope.get("user")
        return bool(user is not None and user.is_authenticated and user.is_active)

    def checked(self, at: float) -> None:
        self.checked_at = at
        self.recheck_after = RECHECK_SECONDS * (1 - RECHECK_JITTER * random.random())

    def recheck_due(self) -> bool:
        return time.monotonic() - self.checked_at >= self.recheck_after

    async def still_allowed(self) -> int | None:
        now = time.monotonic()
        if now - self.checked_at < self.recheck_after:
            return None  # (the user in the scope is the one checked on connect: no change)
        if not self.user_ok():
            return UNAUTHENTICATED
        started, task = self.shared_recheck(now)
        refused = await asyncio.shield(task)
        self.forget_decisions()
        self.checked(started)
        return refused

    def shared_recheck(self, now: float) -> tuple[float, asyncio.Task]:
        """The re-read this connection waits on: one already started for the same session and
        page after this connection's last check (still running, or done less than
        ``RECHECK_SECONDS`` ago), else a new one."""
        session = self.scope.get("session")
        key = (
            asyncio.get_running_loop(),
            type(self).__name__,
            self.scope["user"].pk,
            getattr(session, "session_key", None),
            self.page_key(),
        )
        shared = _rechecks.get(key)
        if (
            shared is not None
            and shared[0] > self.checked_at
            and (not shared[1].done() or now - shared[0] < RECHECK_SECONDS)
        ):
            return shared
        if len(_rechecks) > 10_000:  # bounded: forget the stale ones
            for stale in [k for k, (at, _) in _rechecks.items() if now - at >= RECHECK_SECONDS]:
                del _rechecks[stale]
        _rechecks[key] = shared = (now, asyncio.ensure_future(self.recheck()))
        return shared

    def page_key(self):
        """What the page shows, for sharing re-reads between its connections."""
        return None

    @database_sync_to_async
    def recheck(self) -> int | None:
        """The user is still active, has not signed out, and may still see the page."""
        user = self.scope["user"]
        if not get_user_model().objects.filter(pk=user.pk, is_active=True).exists():
            return UNAUTHENTICATED
        session = self.scope.get("session")
        key = getattr(session, "session_key", None)
        if key is not None and not session.exists(key):
            return UNAUTHENTICATED
        return self.page_refused()

    def forget_decisions(self) -> None:
        """Drop per-message decisions cached since the last recheck."""

    def page_refused(self) -> int | None:
        """Sync: None if the user may see the page, else a close code."""
        return None

    # whether ``may_receive`` decides per message (else every message of the page may go)
    filters: bool = False

    async def may_receive(self, about: dict) -> bool:
        """Whether a relayed message (``about``: its type, service and environment) may go to
        this user, beyond seeing the page (asked only when ``filters``)."""
        return True

    async def shut(self, code: int) -> None:
        self.closed = True
        await self.disconnect(code)
        await self.close(code=code)

    # --- per page ---------------------------------------------------------------------------

    async def find_groups(self) -> tuple[list[str], int | None]:
        raise NotImplementedError

    async def snapshot(self) -> list[dict]:
        raise NotImplementedError


class BoardConsumer(LiveConsumer):
    """``/ws/board/``: every cell the user may see on connect, then ``board.cell`` messages."""

    visible: dict[tuple[str, str], bool]
    filters = True

    async def find_groups(self) -> tuple[list[str], int | None]:
        self.visible = {}
        return [BOARD_GROUP], None

    def forget_decisions(self) -> None:
        self.visible = {}

    async def may_receive(self, about: dict) -> bool:
        if about["type"] != "board.cell":
            return True
        key = (about["service"], about["environment"])
        if key not in self.visible:
            self.visible[key] = await self.cell_visible(*key)
        return self.visible[key]

    @database_sync_to_async
    def cell_visible(self, service: str, environment: str) -> bool:
        target = (
            Target.objects.select_related("service", "environment")
            .filter(service__slug=service, environment__slug=environment)
            .first()
        )
        return target is not None and may(self.scope["user"], "target.view", target) is None

    @database_sync_to_async
    def snapshot(self) -> list[dict]:
        targets = policy.visible(
            Target.objects.all(), self.scope["user"], env="environment", service="service"
        )
        messages = []
        for cell in load_cells(targets):
            self.visible[(cell.target.service.slug, cell.target.environment.slug)] = True
            messages.append({"type": "board.cell", "data": cell_dict(cell)})
        return messages


class DeploymentConsumer(LiveConsumer):
    """``/ws/deployments/<id>/``: the deployment, missed events, its target and its request
    samples on connect, then ``deployment``, ``event``, ``target`` and ``metrics`` messages."""

    target_id: int | None = None

    @property
    def deployment_id(self) -> int:
        return int(self.scope["url_route"]["kwargs"]["deployment_id"])

    def page_key(self):
        return self.deployment_id

    @database_sync_to_async
    def find_groups(self) -> tuple[list[str], int | None]:
        d = (
            Deployment.objects.select_related("target__service", "target__environment")
            .filter(pk=self.deployment_id)
            .first()
        )
        if d is None:
            return [], NOT_FOUND
        refused = may(self.scope["user"], "deployment.view", d)
        if refused is not None:
            return [], refused
        self.target_id = d.target_id
        return [deployment_group(d.pk), metrics_group(d.target_id)], None

    def page_refused(self) -> int | None:
        d = (
            Deployment.objects.select_related("target__service", "target__environment")
            .filter(pk=self.deployment_id)
            .first()
        )
        if d is None:
            return NOT_FOUND
        return may(self.scope["user"], "deployment.view", d)

    def query(self, name: str, kind=int):
        values = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        try:
            return kind(values[name][0])
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
        after = self.query("after")
        if after is not None:
            missed = DeploymentEvent.objects.filter(deployment=d, pk__gt=after).order_by("-id")
            messages += [
                {"type": "event", "data": event_dict(e)}
                for e in reversed(missed[:MAX_CATCH_UP_EVENTS])
            ]
        messages.append({"type": "target", "data": target_dict(d.target)})
        since = self.query("since", float)
        samples = charts.window(d.target_id, since)
        messages.append(
            {
                "type": "metrics",
                "data": {"target": d.target.key, "samples": samples, "replace": since is None},
            }
        )
        return messages
