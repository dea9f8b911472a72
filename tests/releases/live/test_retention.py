"""What the live pages keep in Redis stays bounded (docs/retention.md): the request samples of
the charts (a 15-minute window per target, trimmed on every write, the key expiring after it)
and the channel layer's messages for WebSockets (at most ``capacity`` per channel, gone after
``expiry``). Real Redis: this test run's (REDIS_URL or the embedded one)."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings

from releases.live import charts


def test_chart_samples_past_the_window_are_dropped_and_the_key_expires():
    store = charts.Store(prefix=f"test-retention-{uuid.uuid4().hex[:10]}")
    now = time.time()
    every = 5.0
    start = now - 3 * charts.WINDOW_SECONDS  # three windows' worth of samples
    n = int(3 * charts.WINDOW_SECONDS / every)
    for i in range(n + 1):
        store.add(7, {"t": start + i * every, "slots": {}})
    key = store._samples(7)  # noqa: SLF001
    kept = store.client.zcard(key)
    assert kept == int(charts.WINDOW_SECONDS / every) + 1  # the last window, both ends in
    oldest = store.client.zrange(key, 0, 0, withscores=True)[0][1]
    assert oldest >= now - charts.WINDOW_SECONDS - 1
    assert 0 < store.client.ttl(key) <= charts.WINDOW_SECONDS + 60
    store.save_readings({7: {"time": now, "slots": {}}})
    assert 0 < store.client.ttl(store._reading(7)) <= charts.READING_TTL  # noqa: SLF001
    store.client.delete(key, store._reading(7))  # noqa: SLF001


@pytest.mark.django_db
def test_a_dashboard_that_stops_reading_holds_at_most_the_layers_capacity():
    config = settings.CHANNEL_LAYERS["default"]["CONFIG"]
    capacity, expiry = config["capacity"], config["expiry"]
    assert capacity <= 1000 and expiry <= 60  # what docs/retention.md says
    layer = get_channel_layer()
    group = f"test-retention-{uuid.uuid4().hex[:10]}"

    async def scenario():
        channel = await layer.new_channel()
        await layer.group_add(group, channel)
        for n in range(capacity + 300):  # a WebSocket that never reads: events keep coming
            await layer.group_send(group, {"type": "event", "n": n})
        got = 0
        while True:
            try:
                async with asyncio.timeout(0.5):
                    await layer.receive(channel)
            except TimeoutError:
                break
            got += 1
        await layer.group_discard(group, channel)
        return got

    assert async_to_sync(scenario)() == capacity
