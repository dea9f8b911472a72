"""Publishing from sync code (workers' ticks, request threads) goes through one event loop per
process: ``async_to_sync`` made a loop -- and a channel-layer connection to Redis -- per call,
which at 100 canaries held ticks behind connection handshakes. A dead channel layer is logged
and never fails the caller. A publish builds only the messages of groups someone listens to.
Real Redis (REDIS_URL) for the layer."""

from __future__ import annotations

import asyncio
import json
import logging
import threading

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings as django_settings

from releases.live import events
from tests import factories


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


@pytest.mark.django_db
def test_a_publish_builds_only_what_someone_watches(
    django_assert_num_queries, django_capture_on_commit_callbacks
):
    """A tick publishes after every commit; with no page open on the deployment or the board it
    reads nothing and sends nothing (it was half of an analysis tick at 100 canaries). The board
    alone gets its cell; the deployment's page gets the deployment, its events and its target."""
    d = factories.make_deployment()
    event = d.events.order_by("id").last()
    layer = get_channel_layer()
    page_group = events.deployment_group(d.pk)

    def publish():
        with django_capture_on_commit_callbacks(execute=True):
            events.publish_deployment(d.pk, [event.pk])

    def listen(*groups):  # a new channel in each group (channels_redis receives in one loop)
        channels = [async_to_sync(layer.new_channel)() for _ in groups]
        for group, channel in zip(groups, channels, strict=True):
            async_to_sync(layer.group_add)(group, channel)
        publish()
        for group, channel in zip(groups, channels, strict=True):
            async_to_sync(layer.group_discard)(group, channel)

        async def drain_all():
            return [await _drain(layer, channel) for channel in channels]

        return async_to_sync(drain_all)()

    with django_assert_num_queries(0):
        publish()
    assert listen(events.BOARD_GROUP) == [["board.cell"]]
    assert listen(page_group, events.BOARD_GROUP) == [
        ["deployment", "event", "target"],
        ["board.cell"],
    ]
    with django_assert_num_queries(0):  # both left
        publish()


async def _drain(layer, channel) -> list[str]:
    """The types of every message waiting on ``channel``."""
    types = []
    while True:
        try:
            message = await asyncio.wait_for(layer.receive(channel), 0.5)
        except TimeoutError:
            return types
        types += [json.loads(frame)["type"] for frame in message["frames"]]


def test_a_layer_that_cannot_say_who_listens_counts_every_group_as_watched(settings):
    layer = dict(django_settings.CHANNEL_LAYERS["default"])
    dead = {"address": "redis://127.0.0.1:9/0", "socket_connect_timeout": 0.5}
    layer["CONFIG"] = {**layer["CONFIG"], "hosts": [dead]}
    settings.CHANNEL_LAYERS = {"default": layer}
    assert events.subscribed(["a", "b"]) == {"a", "b"}
