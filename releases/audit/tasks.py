"""The scheduled checkpoint export (Celery beat runs it every
``SWITCHYARD_AUDIT_CHECKPOINT_SECONDS`` while ``SWITCHYARD_AUDIT_CHECKPOINTS`` is set)."""

from __future__ import annotations

import logging

from celery import shared_task

from releases.audit import checkpoints

logger = logging.getLogger(__name__)


@shared_task(name=checkpoints.TASK, ignore_result=True)
def audit_checkpoint() -> None:
    """Sign the chain head and write it out; a failure is logged (the next run tries again)."""
    try:
        cp = checkpoints.export()
    except checkpoints.CheckpointError as exc:
        logger.error("audit checkpoint not written: %s", exc)
        return
    logger.info("audit checkpoint written: %s rows, last #%s", cp["length"], cp["last_id"])
