"""One channel-layer subscription per group and process, fanned out to the process' consumers.

channels gives every consumer a channel of its own, and a group message reaches each member
channel through channels_redis' receive loop: per message and per consumer, two new tasks, an
``asyncio.wait``, a receive lock handed along, a dispatch. With a thousand dashboards on one
deployment that machinery, not the sending, was most of the web processes' time while a publish
was relayed (py-spy on ``bench/ws.py``), and every dashboard's frame queued behind it. So a
process joins each group once, with a channel of its own here, receives each message once, and
hands it to its consumers of that group in the order they joined, with a plain call.

A consumer whose permission re-check is due is handed the message as a task of its own, so that
the others never wait for its database read; messages stay in order for it (the tasks await the
same re-check and resume in the order they were made). When the group's messages cannot be
received (Redis away) its consumers are closed with 1011, and their pages reconnect and re-sync.
"""

from __future__ import annotations

import asyncio
import logging
import weakref

logger = logging.getLogger(__name__)

# the close code of a page whose group's messages could not be received (reconnect and re-sync)
LOST = 1011


class _Group:
    def __init__(self):
        self.members: dict = {}  # consumer -> None, in the order they joined
        self.channel: str | None = None
        self.joined = asyncio.Event()  # the layer's group_add is done
        self.task: asyncio.Task | None = None


class Hub:
    """The groups joined on one event loop, through one channel layer."""

    def __init__(self, layer):
        self.layer = layer
        self.groups: dict[str, _Group] = {}

    async def join(self, group: str, consumer) -> None:
        """Add ``consumer`` to ``group``; returns once the process hears the group."""
        entry = self.groups.get(group)
        if entry is None:
            entry = self.groups[group] = _Group()
            entry.members[consumer] = None
            try:
                entry.channel = await self.layer.new_channel()
                await self.layer.group_add(group, entry.channel)
            except BaseException:
                if self.groups.get(group) is entry:
                    del self.groups[group]
                entry.joined.set()
                raise
            entry.task = asyncio.ensure_future(self._listen(group, entry))
            entry.joined.set()
        else:
            entry.members[consumer] = None
            await entry.joined.wait()
            if self.groups.get(group) is not entry:  # its first member's join failed
                entry.members.pop(consumer, None)
                await self.join(group, consumer)

    async def leave(self, group: str, consumer) -> None:
        entry = self.groups.get(group)
        if entry is None:
            return
        entry.members.pop(consumer, None)
        if entry.members:
            return
        del self.groups[group]  # a later join subscribes anew
        await entry.joined.wait()
        if entry.channel is not None:
            await self.layer.group_discard(group, entry.channel)
        if entry.task is not None and entry.task is not asyncio.current_task():
            entry.task.cancel()  # (a consumer that left while relaying: the loop ends by itself)

    async def _listen(self, group: str, entry: _Group) -> None:
        while True:
            try:
                message = await self.layer.receive(entry.channel)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 -- Redis away: its pages reconnect and re-sync
                self._lost(group, entry)
                return
            if self.groups.get(group) is not entry:
                return  # left while it received
            for consumer in list(entry.members):
                try:
                    if consumer.recheck_due():
                        asyncio.ensure_future(consumer.relay(message))
                    else:
                        await consumer.relay(message)
                except Exception:  # noqa: BLE001 -- one closed socket must not stop the others
                    logger.warning("could not relay %s to a consumer", group, exc_info=True)
            if self.groups.get(group) is not entry:
                return  # its last consumer left while it relayed

    def _lost(self, group: str, entry: _Group) -> None:
        """The group's messages can no longer be received (Redis went away, and with it, if it
        restarted empty, the group itself): close its consumers with 1011, as channels closes a
        consumer whose receive fails, so that each page reconnects (``static/js/live.js``, with
        backoff), joins anew and reads a fresh snapshot."""
        logger.warning(
            "could not receive %s's messages: closing its %d connections so that they re-sync",
            group,
            len(entry.members),
            exc_info=True,
        )
        if self.groups.get(group) is entry:
            del self.groups[group]
        for consumer in list(entry.members):
            asyncio.ensure_future(consumer.shut(LOST))


_hubs: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # event loop -> {layer: Hub}


def hub(layer) -> Hub:
    """This event loop's hub for ``layer`` (a test's loops each have their own)."""
    per_loop = _hubs.setdefault(asyncio.get_running_loop(), {})
    found = per_loop.get(id(layer))
    if found is None or found.layer is not layer:
        found = per_loop[id(layer)] = Hub(layer)
    return found
