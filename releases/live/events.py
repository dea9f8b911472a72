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

Groups: ``deployment.<id>`` for one deployment page, ``metrics.<target id>`` for the samples of a
target (every open deployment page of that target), ``board`` for the matrix. One publish is one
channel-layer message (``envelope``): the WebSocket frames already encoded, and for each what it
is about (type, service, environment), so that consumers check permission without decoding it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading

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
    return {"type": "relay", "frames": frames, "about": about}


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


def publish_deployment(deployment_id: int, event_ids: list[int] | None = None) -> None:
    """After commit: send the deployment, its new events and its board cell to subscribers."""

    def send():
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
        _send(deployment_group(d.pk), *messages)
        cells = board_cells(Target.objects.filter(pk=d.target_id))
        _send(BOARD_GROUP, *({"type": "board.cell", "data": cell} for cell in cells))

    transaction.on_commit(send)
    transaction.on_commit(lambda: queue.enqueue_notify(deployment_id, event_ids))


def publish_metrics(target_id: int, target_key: str, samples: list[dict]) -> None:
    """Send new request samples of a target (not transactional: they live in Redis)."""
    if samples:
        message = {"target": target_key, "samples": samples, "replace": False}
        _send(metrics_group(target_id), {"type": "metrics", "data": message})
