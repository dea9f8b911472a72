"""A burst of WebSocket connects (1,000 dashboards after a web restart) joins as many groups at
once. channels_redis gives each process a redis-py connection pool that, since redis-py 7, holds
at most 100 connections and *raises* ``MaxConnectionsError: Too many connections`` beyond them:
``bench/ws.py --clients 1000`` logged 1,512 of those from ``group_add`` and ``group_discard``,
each a dashboard refused or a group left behind. The layer of ``settings.CHANNEL_LAYERS``
(``switchyard.channel_layer``) waits for a free connection instead. Real Redis (REDIS_URL)."""

from __future__ import annotations

import asyncio

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from switchyard.channel_layer import MAX_CONNECTIONS


def test_three_times_the_pool_joining_at_once_all_join_on_a_bounded_pool():
    layer = get_channel_layer()
    joining = 3 * MAX_CONNECTIONS

    async def storm():
        channels = [await layer.new_channel() for _ in range(joining)]
        await asyncio.gather(*(layer.group_add("storm", c) for c in channels))
        connection = layer.connection(layer.consistent_hash("storm"))
        members = await connection.zcard(layer._group_key("storm"))
        pool = connection.connection_pool
        opened = len(pool._in_use_connections) + len(pool._available_connections)
        await asyncio.gather(*(layer.group_discard("storm", c) for c in channels))
        left = await connection.zcard(layer._group_key("storm"))
        return members, left, opened

    members, left, opened = async_to_sync(storm)()
    assert (members, left) == (joining, 0)
    assert opened <= MAX_CONNECTIONS
