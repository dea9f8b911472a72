"""The port through which a reconcile tick is asked for: by task *name* on the broker.

Actions (after commit) and the sweep call :func:`enqueue_tick`; nothing here imports the reconcile
loop, so ``releases.actions`` stays below ``releases.reconcile`` in the layering (see
``docs/architecture.md``). The task names are the wire contract between web and worker processes
and stay as they were before the house moved the tasks (``releases.tasks.*``), so messages
already queued by an older process are still understood.

A broker outage is logged, never raised: the intent is in the database, and the periodic sweep
enqueues the tick once Redis answers again.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime

from celery import current_app

logger = logging.getLogger(__name__)

TICK_TASK = "releases.tasks.advance_deployment"
CLEANUP_TASK = "releases.tasks.cleanup_slot"
SWEEP_TASK = "releases.tasks.sweep"
SAMPLE_TASK = "releases.tasks.sample_metrics"
NOTIFY_TASK = "notifications.fanout"  # the notifications app's subscription to deployments
NOTIFY_QUEUE = "notify"
PRIORITY_QUEUE = "priority"
DEFAULT_QUEUE = "default"


def enqueue_tick(
    deployment_id: int,
    *,
    priority: bool = False,
    countdown: float = 0,
    due: datetime | None = None,
) -> None:
    """Ask a worker for a tick of ``deployment_id`` (rollback and abort on the priority queue).

    ``due``: the deployment's ``next_tick_at`` this tick is scheduled for (the loop's own next
    tick, or the sweep's stand-in for a lost one): it runs only if no tick has run since
    (``releases.actions.claim``). Without it (a command, a new deployment) it always runs."""
    headers = {"due_at": time.time() + (countdown or 0)}  # the worker logs how late it started
    if due is not None:
        headers["tick_due"] = due.isoformat()
    try:
        current_app.send_task(
            TICK_TASK,
            args=(deployment_id,),
            queue=PRIORITY_QUEUE if priority else DEFAULT_QUEUE,
            countdown=countdown or None,
            priority=0 if priority else 5,
            headers=headers,
        )
    except Exception:  # noqa: BLE001 -- any broker failure: the database still holds the intent
        logger.warning("could not enqueue a tick for deployment %s", deployment_id, exc_info=True)


def enqueue_cleanup(deployment_id: int) -> None:
    """Ask a worker to scale down the slot a rollback kept (the next sweep retries on failure)."""
    try:
        current_app.send_task(CLEANUP_TASK, args=(deployment_id,), queue=DEFAULT_QUEUE)
    except Exception:  # noqa: BLE001 -- any broker failure: the next sweep tries again
        logger.warning(
            "could not enqueue the cleanup of deployment %s", deployment_id, exc_info=True
        )


def enqueue_notify(deployment_id: int, event_ids: list[int] | None) -> None:
    """After commit: let the notifications app fan these events out (on its own queue and
    worker, so a dead chat service never slows a rollout). A lost message is caught up by the
    ``notifications.sweep`` task."""
    if not event_ids:
        return
    try:
        current_app.send_task(
            NOTIFY_TASK, args=(deployment_id, list(event_ids)), queue=NOTIFY_QUEUE, expires=600
        )
    except Exception:  # noqa: BLE001 -- any broker failure: the sweep fans the events out later
        logger.warning("could not enqueue notifications for deployment %s", deployment_id)
