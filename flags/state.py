"""What an environment serves: the Unleash client-features document, built from the database
and cached in the process by the environment's revision.

The revision is read at most every ``FLAGS_REVISION_CHECK_MS`` (default 250 ms) per process
and environment, so most SDK requests make no query at all; the document, its JSON bytes, its
ETag and the compiled engine state are rebuilt only when an action has bumped the revision.
Actions also drop this process's cached revision when they commit, so a change made here is
served here at once; other web processes serve it within the check interval -- that is how
fast a kill switch reaches OFREP clients (and a polling Unleash SDK at its next poll after).
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass

from django.conf import settings

from flags.engine import Compiled, compile_features
from flags.models import Flag, FlagSetting, Revision, Segment

_cache: dict[int, Snapshot] = {}
_checked: dict[int, float] = {}  # environment id -> when its revision was last read
_lock = threading.Lock()


def check_interval() -> float:
    return int(getattr(settings, "FLAGS_REVISION_CHECK_MS", 250)) / 1000


def forget(environment_ids=None) -> None:
    """Read these environments' revisions (all: None) again at their next request."""
    if environment_ids is None:
        _checked.clear()
        return
    for env_id in environment_ids:
        _checked.pop(env_id, None)


@dataclass(frozen=True)
class Snapshot:
    environment_id: int
    revision: int
    document: dict
    body: bytes
    etag: str
    compiled: Compiled
    flags: dict  # key -> (kind, default_value, flag_type)


def revision_of(environment_id: int) -> int:
    return (
        Revision.objects.filter(environment_id=environment_id)
        .values_list("number", flat=True)
        .first()
        or 1
    )


def feature_of(flag: Flag, setting: FlagSetting | None) -> dict:
    strategies = [
        {k: s[k] for k in ("id", "name", "parameters", "constraints", "segments", "variants")}
        for s in (setting.strategies if setting else [])
        if not s.get("disabled")
    ]
    return {
        "name": flag.key,
        "description": flag.description,
        "type": flag.flag_type,
        "project": "default",
        "enabled": bool(setting and setting.serving),
        "stale": False,
        "impressionData": flag.impression_data,
        "strategies": strategies,
        "variants": setting.variants if setting else [],
    }


def build(environment_id: int, revision: int) -> Snapshot:
    flags = list(Flag.objects.filter(archived_at__isnull=True).order_by("key"))
    settings = {s.flag_id: s for s in FlagSetting.objects.filter(environment_id=environment_id)}
    segments = [
        {"id": s.pk, "name": s.name, "constraints": s.constraints}
        for s in Segment.objects.order_by("pk")
    ]
    document = {
        "version": 2,
        "features": [feature_of(f, settings.get(f.pk)) for f in flags],
        "segments": segments,
        "query": {"environment": str(environment_id)},
        "meta": {"revisionId": revision, "etag": f'"{environment_id}:{revision}"'},
    }
    body = json.dumps(document, separators=(",", ":")).encode()
    return Snapshot(
        environment_id=environment_id,
        revision=revision,
        document=document,
        body=body,
        etag=f'"{environment_id}:{revision}"',
        compiled=compile_features(document),
        flags={f.key: (f.kind, f.default_value, f.flag_type) for f in flags},
    )


def current(environment_id: int) -> Snapshot:
    """The environment's document: cached, checked against its revision at most every
    ``check_interval()`` (one small query), rebuilt when the revision moved."""
    found = _cache.get(environment_id)
    now = time.monotonic()
    if found is not None and now - _checked.get(environment_id, -1e9) < check_interval():
        return found
    revision = revision_of(environment_id)
    _checked[environment_id] = now
    if found is not None and found.revision == revision:
        return found
    snapshot = build(environment_id, revision)
    with _lock:
        cached = _cache.get(environment_id)
        if cached is None or cached.revision <= revision:
            _cache[environment_id] = snapshot
    return snapshot
