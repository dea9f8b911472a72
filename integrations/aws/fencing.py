"""Fencing on AWS: a stale worker's routing or scale call never lands after a newer tick's.

The reconcile loop sets ``target.fence`` to ``(deployment id, claim generation)`` before it acts
(``integrations.base.StaleFence``). Each resource the providers change records the fence of the
last call that changed it, and a call with an older fence is refused before anything is written:

- a Lambda alias (the traffic alias and each slot's): ``"fence"`` in the JSON description
  the alias already carries, written in the same ``UpdateAlias`` as the routing, which sends
  the ``RevisionId`` of the read it was checked against -- AWS refuses the update
  (``PreconditionFailedException``, transient) if the alias changed meanwhile, so check and
  write are one conditional write (moto accepts ``RevisionId`` and does not enforce it: the
  tests show the check, not AWS' precondition);
- an ALB listener or rule: the tag ``switchyard:fence``, written before the forward is modified;
  an ECS service: the same tag, before ``UpdateService``. Neither API has a conditional write,
  so a stale call checked in the instant before a newer one's tag lands can still follow it:
  the window is one API round trip, and the lease check before every call
  (``releases.reconcile.lease``) closes most of it;
- Route 53 weighted records: a TXT record beside them, changed in the same change batch as the
  weights (``integrations.aws.route53``).
"""

from __future__ import annotations

from integrations.base import StaleFence

FENCE_TAG = "switchyard:fence"


def text(fence: tuple[int, int]) -> str:
    return f"{fence[0]}:{fence[1]}"


def parse(raw) -> tuple[int, int] | None:
    try:
        owner, _, generation = str(raw).partition(":")
        return (int(owner), int(generation))
    except ValueError:
        return None


def check(fence: tuple[int, int] | None, applied_raw, what: str) -> bool:
    """Raise ``StaleFence`` when ``fence`` is older than the one ``what`` records; True when
    ours is newer than the recorded one (the record must be updated), False when the same or
    when there is no fence."""
    if fence is None:
        return False
    applied = parse(applied_raw) if applied_raw else None
    if applied is not None and tuple(fence) < applied:
        raise StaleFence(
            f"refused to change {what}: fence {text(fence)} is older than {text(applied)}, "
            "already applied by a newer tick"
        )
    return applied != tuple(fence)
