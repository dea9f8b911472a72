"""Publishing from sync code (workers' ticks, request threads) goes through one event loop per
process: ``async_to_sync`` made a loop -- and a channel-layer connection to Redis -- per call,
which at 100 canaries held ticks behind connection handshakes. A dead channel layer is logged
and never fails the caller. Real Redis (REDIS_URL) for the layer."""

from __future__ import annotations

import logging
import threading
import uuid

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings as django_settings

from releases.live import events


@pytest.fixture(autouse=True)
def own_channel_layer(settings):
    layer = dict(django_settings.CHANNEL_LAYERS["default"])
    layer["CONFIG"] = {**layer["CONFIG"], "prefix": f"test-{uuid.uuid4().hex[:10]}"}
    settings.CHANNEL_LAYERS = {"default": layer}


def test_threads_publish_on_one_loop_and_the_message_arrives():
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)("pub-test", channel)
    loops = []

    def publish(n):
        loops.append(events._publisher_loop())
        events.group_send("pub-test", {"type": "relay", "n": n})

    threads = [threading.Thread(target=publish, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(loops) == 4 and len(set(map(id, loops))) == 1

    async def receive_all():
        return sorted([(await layer.receive(channel))["n"] for _ in range(4)])

    received = async_to_sync(receive_all)()
    assert received == [0, 1, 2, 3]


def test_a_dead_channel_layer_is_logged_not_raised(settings, caplog):
    layer = dict(django_settings.CHANNEL_LAYERS["default"])
    dead = {"address": "redis://127.0.0.1:9/0", "socket_connect_timeout": 0.5}
    layer["CONFIG"] = {**layer["CONFIG"], "hosts": [dead]}
    settings.CHANNEL_LAYERS = {"default": layer}
    caplog.set_level(logging.WARNING, logger=events.__name__)
    events._send("pub-test", {"type": "event", "data": {}})  # returns, does not raise
    assert any("could not publish event to pub-test" in r.getMessage() for r in caplog.records)
