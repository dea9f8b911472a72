"""A slot's status from its Deployment and its pods (pure: the JSON the API answered).

Readiness: a pod counts as ready when its ``Ready`` condition is true, it runs the slot's
version (its ``switchyard.dev/version`` annotation; pods of an older pod template still being
replaced are ``draining``) and it is not terminating. ``ready_for`` is the time since the
condition last turned true. A container waiting in ``CrashLoopBackOff``, ``ImagePullBackOff`` and
the like is ``crashed`` (the reason is kept); so is every unready pod of a Deployment whose
progress deadline passed (``Progressing`` false with ``ProgressDeadlineExceeded``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from integrations.base import InstanceStatus, SlotStatus
from integrations.kubernetes.manifests import SLOT, VERSION_ANNOTATION

CRASH_REASONS = frozenset(
    {
        "CrashLoopBackOff",
        "ImagePullBackOff",
        "ErrImagePull",
        "InvalidImageName",
        "CreateContainerConfigError",
        "CreateContainerError",
        "RunContainerError",
    }
)


def _time(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _condition(obj: dict[str, Any], kind: str) -> dict[str, Any] | None:
    for condition in (obj.get("status") or {}).get("conditions") or []:
        if condition.get("type") == kind:
            return condition
    return None


def deadline_exceeded(deployment: dict[str, Any]) -> bool:
    progressing = _condition(deployment, "Progressing")
    return bool(
        progressing
        and progressing.get("status") == "False"
        and progressing.get("reason") == "ProgressDeadlineExceeded"
    )


def crash_reason(pod: dict[str, Any]) -> str:
    """Why a pod's containers cannot run ("" when nothing says so)."""
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        waiting = (status.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") in CRASH_REASONS:
            return waiting["reason"]
    return ""


def instance(
    pod: dict[str, Any], slot: str, version: str | None, *, port: int, now: float, stalled: bool
) -> InstanceStatus:
    metadata, status = pod.get("metadata") or {}, pod.get("status") or {}
    pod_version = (metadata.get("annotations") or {}).get(VERSION_ANNOTATION) or ""
    ready = _condition(pod, "Ready")
    is_ready = bool(ready and ready.get("status") == "True")
    reason = crash_reason(pod)
    if metadata.get("deletionTimestamp") or (version is not None and pod_version != version):
        state = "draining" if is_ready else "stopped"
    elif status.get("phase") in ("Succeeded", "Failed"):
        state = "crashed" if status.get("phase") == "Failed" else "stopped"
    elif reason:
        state = "crashed"
    elif is_ready:
        state = "ready"
    else:
        state = "crashed" if stalled else "starting"
    since = _time((ready or {}).get("lastTransitionTime")) if state == "ready" else None
    restarts = sum(int(s.get("restartCount") or 0) for s in status.get("containerStatuses") or [])
    ip = status.get("podIP") or ""
    return InstanceStatus(
        id=metadata.get("name", ""),
        slot=slot,
        version=pod_version,
        state=state,
        ready_for=max(0.0, now - since) if since is not None else 0.0,
        address=f"{ip}:{port}" if ip else "",
        restarts=restarts,
        reason=reason or ("ProgressDeadlineExceeded" if state == "crashed" and stalled else ""),
    )


def slot_status(
    slot: str, deployment: dict[str, Any], pods: list[dict[str, Any]], *, port: int, now: float
) -> SlotStatus:
    metadata, spec = deployment.get("metadata") or {}, deployment.get("spec") or {}
    version = (metadata.get("annotations") or {}).get(VERSION_ANNOTATION)
    stalled = deadline_exceeded(deployment)
    mine = [p for p in pods if ((p.get("metadata") or {}).get("labels") or {}).get(SLOT) == slot]
    mine.sort(key=lambda p: p["metadata"].get("name", ""))
    return SlotStatus(
        name=slot,
        version=version,
        desired=int(spec.get("replicas") or 0),
        instances=tuple(
            instance(p, slot, version, port=port, now=now, stalled=stalled) for p in mine
        ),
    )
