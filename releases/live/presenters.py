"""Plain-dict views of the domain, shared by the REST API and the WebSocket messages."""

from __future__ import annotations

from datetime import UTC, datetime

from django.db.models import F, OuterRef, Subquery
from django.urls import reverse

from integrations import registry
from releases.live.runs import analysis_list
from releases.models import (
    ACTIVE_STATES,
    TERMINAL_STATES,
    Deployment,
    DeploymentEvent,
    Release,
    State,
    Target,
)
from strategies.spec import analysis_refs


def _ts(value):
    return value.isoformat() if value else None


def slots_view(target: Target) -> dict:
    """Per slot: version, replicas ready/desired, weight and instances (as last observed)."""
    return target.observed or {}


def role_weights(deployment: Deployment) -> dict:
    return deployment.weights or {}


# The columns a deployment's view reads (``deployment_view``), as ``values()`` names them:
# reading these into plain dicts, rather than a model instance per joined row with every
# column decoded, is most of what a list page of deployments costs (docs/serving.md).
DEPLOYMENT_COLUMNS = (
    *(
        "id state strategy step_index step progress weights stable_slot canary_slot intent "
        "message failure_reason reason rollback_of version created_at started_at finished_at "
        "updated_at"
    ).split(),
    "target__service__slug",
    "target__environment__slug",
    "release__version",
    "from_release__version",
    "created_by__username",
)


def deployment_row(d: Deployment) -> dict:
    """``d`` as the row ``deployment_view`` reads (``DEPLOYMENT_COLUMNS``)."""
    target = d.target
    return {
        "id": d.pk,
        "state": d.state,
        "strategy": d.strategy,
        "step_index": d.step_index,
        "step": d.step,
        "progress": d.progress,
        "weights": d.weights,
        "stable_slot": d.stable_slot,
        "canary_slot": d.canary_slot,
        "intent": d.intent,
        "message": d.message,
        "failure_reason": d.failure_reason,
        "reason": d.reason,
        "rollback_of": d.rollback_of_id,
        "version": d.version,
        "created_at": d.created_at,
        "started_at": d.started_at,
        "finished_at": d.finished_at,
        "updated_at": d.updated_at,
        "target__service__slug": target.service.slug,
        "target__environment__slug": target.environment.slug,
        "release__version": d.release.version,
        "from_release__version": d.from_release.version if d.from_release_id else None,
        "created_by__username": d.created_by.get_username() if d.created_by_id else None,
    }


def deployment_dict(d: Deployment) -> dict:
    return deployment_view(deployment_row(d))


def page_links(name: str):
    """``pk -> reverse(name, args=[pk])`` with one ``reverse`` (for a page of rows): the
    pattern's one argument is an integer, so the URL is the same text around it."""
    mark = 918273645
    head, _, tail = reverse(name, args=[mark]).rpartition(str(mark))
    return lambda pk: f"{head}{pk}{tail}"


def deployment_view(row: dict, page=None) -> dict:
    """What the API, the WebSocket messages and the deployment page show of a deployment, from
    its row (``DEPLOYMENT_COLUMNS``); ``page``: ``page_links("deployment")`` for many rows."""
    pk, state, strategy = row["id"], row["state"], row["strategy"]
    return {
        "id": pk,
        "service": row["target__service__slug"],
        "environment": row["target__environment__slug"],
        "state": state,
        "active": state in ACTIVE_STATES,
        "strategy": strategy,
        "step": {"index": row["step_index"], "description": row["step"]},
        "weights": row["weights"] or {},
        "slots": {"stable": row["stable_slot"], "canary": row["canary_slot"]},
        "stable_version": row["from_release__version"],
        "target_version": row["release__version"],
        "intent": row["intent"] or None,
        "message": row["message"],
        "failure_reason": row["failure_reason"] or None,
        "reason": row["reason"],
        "rollback_of": row["rollback_of"],
        "pause": pause_of(state, strategy, row["progress"]),
        # the runs with their working; no query when the strategy runs no analysis (lists)
        "analysis": analysis_list(pk) if next(analysis_refs(strategy or {}), None) else [],
        "created_by": row["created_by__username"],
        "created_at": _ts(row["created_at"]),
        "started_at": _ts(row["started_at"]),
        "finished_at": _ts(row["finished_at"]),
        "updated_at": _ts(row["updated_at"]),
        "version": row["version"],
        "links": {
            "self": f"/api/v1/deployments/{pk}",
            "events": f"/api/v1/deployments/{pk}/events",
            "page": page(pk) if page is not None else reverse("deployment", args=[pk]),
        },
    }


def event_dict(e: DeploymentEvent) -> dict:
    return {
        "id": e.pk,
        "deployment": e.deployment_id,
        "kind": e.kind,
        "message": e.message,
        "data": e.data,
        "actor": e.actor,
        "created_at": _ts(e.created_at),
    }


def release_dict(r: Release) -> dict:
    return {
        "service": r.service.slug,
        "version": r.version,
        "artifact": r.artifact,
        "commit": r.commit,
        "notes": r.notes,
        "created_by": r.created_by.get_username() if r.created_by_id else None,
        "created_at": _ts(r.created_at),
    }


def runs_on(t: Target) -> str:
    """Where a target runs, in a few words ("" when its provider does not say)."""
    return registry.describe(t.provider, t.config)


def target_dict(t: Target) -> dict:
    return {
        "service": t.service.slug,
        "environment": t.environment.slug,
        "provider": t.provider,
        "config": t.config,
        "strategy": t.strategy or None,
        "endpoint": t.endpoint or None,
        "runs_on": runs_on(t),
        "stable_version": t.stable_release.version if t.stable_release_id else None,
        "stable_slot": t.stable_slot,
        "slots": slots_view(t),
        "observed_at": _ts(t.observed_at),
        "rollback_window": window_dict(t),
    }


def window_dict(t: Target, now: datetime | None = None) -> dict:
    """The target's rollback window (``releases.actions.window``): whether one is open, until
    when, what it holds (the cost: instances of the previous release kept warm at 0% traffic),
    and in one sentence what a rollback of the current release does now."""
    now = now or datetime.now(UTC)
    seconds = t.environment.rollback_window
    available = registry.holds_warm_slot(t.provider, t.config or {})
    d = (
        Deployment.objects.filter(target=t, state=State.SUCCEEDED, window_until__gt=now)
        .select_related("from_release")
        .order_by("-id")
        .first()
    )
    view = {
        "open": d is not None,
        "seconds": seconds,
        "available": available,
        "deployment": None,
        "until": None,
        "slot": None,
        "version": None,
        "instances": 0,
    }
    if d is not None:
        slot = (t.observed or {}).get(d.stable_slot) or {}
        view.update(
            deployment=d.pk,
            until=_ts(d.window_until),
            slot=d.stable_slot,
            version=d.from_release.version if d.from_release_id else None,
            instances=int(slot.get("desired") or 0),
        )
        held = view["instances"]
        view["summary"] = (
            f"{held} instance{'s' if held != 1 else ''} of {view['version']} held warm at 0% "
            f"traffic in slot {d.stable_slot} until {d.window_until:%H:%M:%S} UTC: a rollback "
            "until then is a switch back"
        )
    elif not available:
        label = registry.PROVIDERS[t.provider].label if t.provider in registry.PROVIDERS else "?"
        view["summary"] = (
            f"the {label} provider cannot keep the previous release warm: a rollback of a "
            "succeeded deployment here redeploys it"
        )
    elif not seconds:
        view["summary"] = (
            f"the rollback window is off in {t.environment.slug}: a rollback of a succeeded "
            "deployment redeploys the previous release"
        )
    else:
        view["summary"] = (
            "no rollback window open: a rollback now redeploys the previous release (a rolling, "
            f"canary or blue-green deployment that succeeds here keeps it warm for {seconds}s)"
        )
    return view


# --- the dashboard's live views (board cells, pauses) --------------------------------------------


def _canary_pause(spec: dict, progress: dict):
    """A canary at a ``pause`` step: timed (started at ``pause_started_at``) or until promoted."""
    steps, index = spec.get("steps") or [], progress.get("index")
    if not isinstance(index, int) or not 0 <= index < len(steps):
        return None
    pause = steps[index].get("pause") if isinstance(steps[index], dict) else None
    if pause is None:
        return None
    if pause.get("duration") is None:
        return "promotion", None
    started = progress.get("pause_started_at")
    return ("timed", started + pause["duration"]) if started is not None else None


def _blue_green_pause(spec: dict, progress: dict):
    """A blue-green deployment at its promotion gate (phase 2), after the smoke checks passed."""
    if progress.get("phase") != 2 or "gate_at" not in progress or progress.get("promoted"):
        return None
    auto = spec.get("auto_promote")
    return ("promotion", None) if auto is None else ("timed", progress["gate_at"] + auto)


# strategy kind -> how to read, from its spec and progress, a pause the engine is holding
PAUSE_READERS = {"canary": _canary_pause, "blue_green": _blue_green_pause}


def pause_dict(d: Deployment) -> dict | None:
    """Why the rollout is holding, for the step list's "time left" and the board's red cells:
    ``{"kind": "operator" | "timed" | "promotion" | "approval", "until": iso | None}``, or None.

    ``operator`` is a person's Pause, ``approval`` a deployment awaiting approval; ``timed`` (a
    pause step counting down, ``until`` when it ends) and ``promotion`` (a step waiting for a
    person to press Promote: the reconcile loop parks the deployment in ``paused`` then) are read
    from the engine's progress by the kind's ``PAUSE_READERS`` entry, or from the generic
    progress keys ``pause_until`` (unix seconds) / ``waiting_for_promotion``.
    """
    return pause_of(d.state, d.strategy, d.progress)


def pause_of(state: str, strategy: dict | None, progress: dict | None) -> dict | None:
    """``pause_dict`` from a deployment's state, strategy and progress."""
    progress = progress or {}
    if state == "awaiting_approval":
        return {"kind": "approval", "until": None, "why": ""}
    if state not in ("paused", "progressing"):
        return None
    found = None
    reader = PAUSE_READERS.get((strategy or {}).get("kind", ""))
    if reader is not None:
        try:
            found = reader(strategy, progress)
        except (KeyError, TypeError, ValueError, AttributeError):
            found = None
    waiting = progress.get("waiting_for_promotion")  # a step holds it (actions.record_tick)
    if found is None and waiting:
        found = "promotion", None
    if found is None and isinstance(progress.get("pause_until"), int | float):
        found = "timed", progress["pause_until"]
    if state == "paused" and (found is None or found[0] != "promotion"):
        # a person's Pause (a step waiting for promotion is paused too: then Promote continues)
        return {"kind": "operator", "until": None, "why": ""}
    if found is None:
        return None
    kind, until = found
    at = datetime.fromtimestamp(until, tz=UTC).isoformat() if until is not None else None
    why = waiting if kind == "promotion" and isinstance(waiting, str) else ""
    return {"kind": kind, "until": at, "why": why}


def deployment_summary(d: Deployment) -> dict:
    """What a board cell (and the board's recent list) shows of a deployment: no analysis, no
    queries beyond the row and its release, from-release and creator."""
    target = d.target
    return {
        "id": d.pk,
        "service": target.service.slug,
        "environment": target.environment.slug,
        "state": d.state,
        "active": d.is_active,
        "strategy": {"kind": d.strategy_kind},
        "step": {"index": d.step_index, "description": d.step},
        "weights": role_weights(d),
        "stable_version": d.from_release.version if d.from_release_id else None,
        "target_version": d.release.version,
        "pause": pause_dict(d),
        "rollback_of": d.rollback_of_id,  # lists mark a rollback and the deployment it undoes
        "created_by": d.created_by.get_username() if d.created_by_id else None,
        "created_at": _ts(d.created_at),
        "finished_at": _ts(d.finished_at),
        "links": {"page": reverse("deployment", args=[d.pk])},
    }


# states (and pauses) that need a person: the board paints these cells red
NEEDS_A_PERSON = ("operator", "promotion", "approval")
FAILED_OUTCOMES = ("failed", "rolled_back", "aborted")


def board_cells(targets=None) -> list[dict]:
    """Every board cell (or those of ``targets``, a Target queryset), with a fixed number of
    queries: see ``cell_dict`` for the shape."""
    return [cell_dict(cell) for cell in load_cells(targets)]


class Cell:
    """One board cell: the target, its active deployment, the last success (who shipped the
    stable release, and when) and the last deployment that ended (to show a failure); with what
    the page shows of them worked out once: the pause, the failure, why the cell is red."""

    __slots__ = ("target", "active", "shipped", "last", "pause", "failed", "alert", "runs_on")

    def __init__(self, target, active=None, shipped=None, last=None):
        self.target, self.active, self.shipped, self.last = target, active, shipped, last
        self.pause = pause_dict(active) if active is not None else None
        # the last deployment that ended, when it ended badly (and nothing is active)
        self.failed = (
            last if active is None and last is not None and last.state in FAILED_OUTCOMES else None
        )
        self.alert = self._alert()
        # where the target runs, when its provider says (a kubernetes target's cluster)
        self.runs_on = registry.describe(target.provider, target.config)

    def _alert(self) -> str:
        """Why the cell is red ("" when it is not)."""
        if self.active is not None and self.active.state == "rolling_back":
            return "rolling back"
        if self.pause and self.pause["kind"] in NEEDS_A_PERSON:
            return {
                "operator": "paused: waiting for someone to resume",
                "promotion": "waiting for someone to promote",
                "approval": "waiting for an approval",
            }[self.pause["kind"]]
        if self.failed is not None:
            version, state = self.failed.release.version, self.failed.state.replace("_", " ")
            return f"last deployment ({version}) {state}"
        return ""


# what a board cell reads of a target and of a deployment that ended (the rest stays unloaded)
TARGET_FIELDS = (
    "id",
    "service_id",
    "environment_id",
    "stable_release_id",
    "stable_slot",
    "provider",
    "config",
    "service__slug",
    "service__name",
    "service__team",
    "environment__slug",
    "environment__name",
    "environment__order",
    "stable_release__version",
)
ENDED_FIELDS = (
    "id",
    "target_id",
    "state",
    "finished_at",
    "release_id",
    "release__version",
    "created_by_id",
    "created_by__username",
)


def load_cells(targets=None) -> list[Cell]:
    """Cells for ``targets`` (default: every target): three queries whatever their number."""
    latest = Deployment.objects.filter(target=OuterRef("pk")).order_by("-id")  # newest first
    last_success = (
        latest.filter(state=State.SUCCEEDED)
        .order_by(F("finished_at").desc(nulls_last=True), "-id")
        .values("pk")[:1]
    )
    last_ended = latest.filter(state__in=TERMINAL_STATES).values("pk")[:1]
    qs = targets if targets is not None else Target.objects.all()
    rows = list(
        qs.select_related("service", "environment", "stable_release")
        .only(*TARGET_FIELDS)
        .annotate(last_success_id=Subquery(last_success), last_ended_id=Subquery(last_ended))
    )
    related = ("release", "from_release", "created_by")
    active = {
        d.target_id: d
        for d in Deployment.objects.filter(
            state__in=ACTIVE_STATES, target__in=[t.pk for t in rows]
        ).select_related(*related)
    }
    wanted = {i for t in rows for i in (t.last_success_id, t.last_ended_id) if i}
    ended = {
        d.pk: d
        for d in Deployment.objects.filter(pk__in=wanted)
        .select_related("release", "created_by")
        .only(*ENDED_FIELDS)
    }
    cells = []
    for t in rows:
        cell = Cell(t, active.get(t.pk), ended.get(t.last_success_id), ended.get(t.last_ended_id))
        for d in (cell.active, cell.shipped, cell.last):
            if d is not None:
                d.target = t  # the serializers read d.target.service / environment
        cells.append(cell)
    return cells


def cell_dict(cell: Cell) -> dict:
    """A ``board.cell`` message's data (see ``releases.live.events``)."""
    t, shipped, failed = cell.target, cell.shipped, cell.failed
    return {
        "service": t.service.slug,
        "environment": t.environment.slug,
        "version": t.stable_release.version if t.stable_release_id else None,
        "deployment": deployment_summary(cell.active) if cell.active is not None else None,
        "shipped": {
            "id": shipped.pk,
            "by": shipped.created_by.get_username() if shipped.created_by_id else None,
            "at": _ts(shipped.finished_at),
        }
        if shipped is not None
        else None,
        "failed": {
            "id": failed.pk,
            "state": failed.state,
            "version": failed.release.version,
            "finished_at": _ts(failed.finished_at),
            "page": reverse("deployment", args=[failed.pk]),
        }
        if failed is not None
        else None,
        "alert": cell.alert,
        "runs_on": cell.runs_on,
    }
