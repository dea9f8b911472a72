"""Live updates over the channel layer, published after commit.

WebSocket messages (the only shapes a browser receives), each ``{"type": ..., "data": ...}``:

- ``deployment``: the deployment after any change, ``serializers.deployment_dict``: the
  API's fields (``deployment_dict``) and ``pause`` (``serializers.pause_dict``: why the rollout is
  holding and until when). Its ``analysis`` is a list of runs, newest last, each
  ``{"id", "name", "step_index", "phase": "running" | "passed" | "failed" | "inconclusive",
  "decision", "why", "started_at", "finished_at", "metrics": [{"name", "unit", "baseline",
  "canary", "threshold", "verdict", "why"}]}``; empty until analysis runs exist).
- ``event``: one DeploymentEvent as ``serializers.event_dict`` gives it (the time line). Its
  ``kind`` is open-ended (``created``, ``state``, ``step``, ``weights``, ``health``, ``promote``,
  ``intent``, ``failure``, ``error``, and whatever new strategies add): pages show any kind.
- ``target``: ``serializers.target_dict`` of the deployment's target (slots, instances, weights).
- ``board.cell``: ``serializers.cell_dict``: ``{"service", "environment", "version",
  "deployment": serializers.deployment_summary | null (the active one), "shipped": {"id", "by",
  "at"} | null, "failed": {"id", "state",
  "version", "finished_at", "page"} | null, "alert": "why the cell is red" | "", "runs_on":
  "where the target runs" (``registry.describe``: a kubernetes target's cluster) | ""}``.
- ``metrics``: request samples of one target (``releases.live.charts``): ``{"target": "api.prod",
  "samples": [{"t": unix seconds, "slots": {"blue": {"version", "rps", "error_rate", "p95_ms",
  "p99_ms", "requests", "errors"}}}], "replace": bool}``; ``replace`` (on connect) means "this is
  the whole window", otherwise the samples are new ones to append.

A WebSocket text frame holds one message, or a JSON array of the messages of one change, in
order (a tick's ``deployment``, its ``event``s and the ``target``): one frame, not three, per
dashboard and publish (``bench/ws.py``: the per-frame cost, server and browser, was most of the
fan-out to a thousand dashboards). ``static/js/live.js`` takes both.

Groups: ``deployment.<id>`` for one deployment page, ``metrics.<target id>`` for the samples of a
target (every open deployment page of that target), ``board`` for the matrix. One publish is one
channel-layer message (``envelope``): the WebSocket frames already encoded (each message, and all
of them as one array), and for each what it is about (type, service, environment), so that
consumers check permission without decoding it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
import time

from channels.layers import get_channel_layer
from django.db import transaction

from releases import queue
from releases.live.presenters import board_cells, deployment_dict, event_dict, target_dict
from releases.models import Deployment, DeploymentEvent, Target

logger = logging.getLogger(__name__)

BOARD_GROUP = "board"


def deployment_group(deployment_id: int) -> str:
    return f"deployment.{deployment_id}"


def metrics_group(target_id: int) -> str:
    return f"metrics.{target_id}"


def envelope(messages: list[dict]) -> dict:
    """What goes over the channel layer: the messages encoded once (every subscriber sends the
    same text), with what a consumer needs to decide who may see each one (``about``)."""
    frames, about = [], []
    for m in messages:
        frames.append(json.dumps(m, separators=(",", ":")))
        data = m.get("data") or {}
        about.append(
            {
                "type": m["type"],
                "service": data.get("service", ""),
                "environment": data.get("environment", ""),
            }
        )
    return {"type": "relay", "frames": frames, "about": about, "batch": batch(frames)}


def batch(frames: list[str]) -> str:
    """The encoded messages as one WebSocket text: one alone, several as a JSON array."""
    return frames[0] if len(frames) == 1 else "[" + ",".join(frames) + "]"


# how long a publish may wait for the channel layer (Redis) before it is given up and logged
PUBLISH_TIMEOUT = 10.0
_publisher: tuple[int, asyncio.AbstractEventLoop] | None = None  # (pid, its loop)
_publisher_lock = threading.Lock()


def _publisher_loop() -> asyncio.AbstractEventLoop:
    """This process' one event loop for publishing, on a thread of its own. ``async_to_sync``
    from a worker thread made a new event loop per call, and with it a new channel-layer
    connection to Redis (channels_redis keeps one per loop) that was closed with the loop: at
    100 canaries, ticks queued behind those handshakes (docs/serving.md)."""
    global _publisher
    with _publisher_lock:
        if _publisher is None or _publisher[0] != os.getpid() or _publisher[1].is_closed():
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="live-publisher", daemon=True).start()
            _publisher = (os.getpid(), loop)
        return _publisher[1]


def group_send(group: str, message: dict) -> None:
    """``channel_layer.group_send`` from sync code, on the publisher loop; raises what the
    layer raises (or TimeoutError after ``PUBLISH_TIMEOUT``)."""
    layer = get_channel_layer()
    if layer is None:
        return
    future = asyncio.run_coroutine_threadsafe(layer.group_send(group, message), _publisher_loop())
    try:
        future.result(timeout=PUBLISH_TIMEOUT)
    except BaseException:
        future.cancel()
        raise


def _send(group: str, *messages: dict) -> None:
    """One channel-layer send for all ``messages`` (a publish fans out to many subscribers: one
    group_send each would multiply the work by the number of messages)."""
    if not messages or get_channel_layer() is None:
        return
    try:
        group_send(group, envelope(list(messages)))
    except Exception:  # a dead channel layer must never fail a command or a tick
        kinds = ", ".join(m.get("type", "?") for m in messages)
        logger.warning("could not publish %s to %s", kinds, group, exc_info=True)


def subscribed(groups: list[str]) -> set[str]:
    """Which of ``groups`` have a subscriber now (a page open on them, in any web process), as the
    channel layer keeps them: a publish builds no message that nobody would receive. A tick
    published the deployment, its events, its target and its board cell whether or not anyone
    watched -- about half of an analysis tick's time, at 100 canaries with no page open
    (docs/serving.md). Errs on the side of publishing: when it cannot tell, every group counts."""
    layer = get_channel_layer()
    if layer is None:
        return set()
    future = asyncio.run_coroutine_threadsafe(_members(layer, groups), _publisher_loop())
    try:
        counts = future.result(timeout=PUBLISH_TIMEOUT)
    except Exception:  # noqa: BLE001 -- Redis unreachable: the send logs it, if it fails too
        future.cancel()
        return set(groups)
    return {group for group, n in zip(groups, counts, strict=True) if n}


async def _members(layer, groups: list[str]) -> list[int]:
    """How many channels each group holds. channels_redis keeps a group as a sorted set of
    channel names scored by when they joined (``_group_key``; members older than
    ``group_expiry`` no longer count, as its ``group_send`` drops them); the in-memory layer as a
    dict. Any other layer: every group counts as subscribed."""
    if hasattr(layer, "_group_key") and hasattr(layer, "consistent_hash"):
        oldest = int(time.time()) - layer.group_expiry
        by_host: dict[int, list[int]] = {}  # one round trip per Redis host, not per group
        for n, group in enumerate(groups):
            by_host.setdefault(layer.consistent_hash(group), []).append(n)
        counts = [0] * len(groups)
        for index, positions in by_host.items():
            pipe = layer.connection(index).pipeline(transaction=False)
            for n in positions:
                pipe.zcount(layer._group_key(groups[n]), oldest, "+inf")
            for n, count in zip(positions, await pipe.execute(), strict=True):
                counts[n] = count
        return counts
    if isinstance(getattr(layer, "groups", None), dict):
        return [len(layer.groups.get(group) or ()) for group in groups]
    return [1] * len(groups)


def publish_deployment(deployment_id: int, event_ids: list[int] | None = None) -> None:
    """After commit: send the deployment, its new events and its target to its page, and its board
    cell to the board -- to those of them someone has open."""

    def send():
        page, board = deployment_group(deployment_id), BOARD_GROUP
        watched = subscribed([page, board])
        if not watched:
            return
        if page not in watched:
            target_id = (
                Deployment.objects.filter(pk=deployment_id).values_list("target_id", flat=True)
            ).first()
            if target_id is not None:
                _send_cells(target_id)
            return
        d = (
            Deployment.objects.select_related(
                "target__service", "target__environment", "release", "from_release", "created_by"
            )
            .filter(pk=deployment_id)
            .first()
        )
        if d is None:
            return
        messages = [{"type": "deployment", "data": deployment_dict(d)}]
        if event_ids:
            events = DeploymentEvent.objects.filter(pk__in=event_ids).order_by("id")
            messages += [{"type": "event", "data": event_dict(e)} for e in events]
        messages.append({"type": "target", "data": target_dict(d.target)})
        _send(page, *messages)
        if board in watched:
            _send_cells(d.target_id)

    transaction.on_commit(send)
    transaction.on_commit(lambda: queue.enqueue_notify(deployment_id, event_ids))


def _send_cells(target_id: int) -> None:
    cells = board_cells(Target.objects.filter(pk=target_id))
    _send(BOARD_GROUP, *({"type": "board.cell", "data": cell} for cell in cells))


def publish_metrics(target_id: int, target_key: str, samples: list[dict]) -> None:
    """Send new request samples of a target (not transactional: they live in Redis)."""
    if samples:
        message = {"target": target_key, "samples": samples, "replace": False}
        _send(metrics_group(target_id), {"type": "metrics", "data": message})
