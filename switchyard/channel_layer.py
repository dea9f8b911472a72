"""The channel layer: channels_redis' ``RedisChannelLayer`` on a connection pool that waits.

channels_redis builds each process' pool with redis-py's ``ConnectionPool.from_url``. Since
redis-py 7 that pool holds at most 100 connections and raises ``MaxConnectionsError`` ("Too many
connections") when a 101st command needs one at the same moment: a storm of WebSocket connects
(a thousand dashboards reconnecting after a web restart, ``bench/ws.py --clients 1000``) runs a
``group_add`` per connection at once, and hundreds of them failed -- dashboards refused, groups
left behind on disconnect. A ``BlockingConnectionPool`` of the same size makes the extra commands
wait (up to ``POOL_WAIT`` seconds) for a connection to come back, which at Redis' speed is
microseconds. ``tests/releases/live/test_connection_storm.py``.
"""

from __future__ import annotations

from channels_redis.core import RedisChannelLayer
from redis import asyncio as aioredis

# connections per process and event loop to each Redis host (redis-py's own cap)
MAX_CONNECTIONS = 100
# how long a command waits for a free connection before it fails
POOL_WAIT = 10.0


class ChannelLayer(RedisChannelLayer):
    def create_pool(self, index):
        host = dict(self.hosts[index])
        if "address" not in host:  # sentinels and the like: channels_redis' own pool
            return super().create_pool(index)
        address = host.pop("address")
        host.setdefault("max_connections", MAX_CONNECTIONS)
        host.setdefault("timeout", POOL_WAIT)
        return aioredis.BlockingConnectionPool.from_url(address, **host)
