"""Fencing on the cluster: a stale worker's write never lands after a newer tick's.

The reconcile loop sets ``target.fence`` to ``(deployment id, claim generation)`` before it acts
(``integrations.base.StaleFence``). Every object the provider writes (slot Deployments, its
Services, the HTTPRoute, VirtualService, DestinationRule, Ingresses) carries the fence of the
write that last changed it, as the annotation ``switchyard.dev/fence`` (``"<id>:<generation>"``).
Before a write the provider compares the object it just read: an older fence than the object's
is refused with ``StaleFence`` (nothing written); otherwise the write carries our fence, and, as
every write here, the ``resourceVersion`` of that read, so the API server itself refuses it
(409) if a newer tick wrote between our read and our write. The check and the write are thus
one conditional write: no window in which an older fence can overwrite a newer one.

A write that changes nothing is not made (the provider skips it), so the fence on an object is
that of the last tick that changed it.
"""

from __future__ import annotations

from typing import Any

from integrations.base import StaleFence

FENCE_ANNOTATION = "switchyard.dev/fence"


def fence_of(obj: dict[str, Any] | None) -> tuple[int, int] | None:
    raw = (((obj or {}).get("metadata") or {}).get("annotations") or {}).get(FENCE_ANNOTATION)
    try:
        owner, _, generation = str(raw).partition(":")
        return (int(owner), int(generation))
    except ValueError:
        return None


def guard(
    fence: tuple[int, int] | None,
    current: dict[str, Any] | None,
    body: dict[str, Any],
    what: str,
) -> dict[str, Any]:
    """Refuse to ``what`` when ``current`` (the object as just read, None when absent) carries
    a newer fence than ``fence``; else stamp ``body`` (the object to write) with ``fence``.
    Without a fence (a call from outside the reconcile loop) nothing is checked or stamped."""
    if fence is None:
        return body
    applied = fence_of(current)
    if applied is not None and tuple(fence) < applied:
        raise StaleFence(
            f"refused to {what}: fence {fence[0]}:{fence[1]} is older than "
            f"{applied[0]}:{applied[1]}, already applied by a newer tick"
        )
    metadata = body.setdefault("metadata", {})
    metadata["annotations"] = {
        **(metadata.get("annotations") or {}),
        FENCE_ANNOTATION: f"{fence[0]}:{fence[1]}",
    }
    return body
