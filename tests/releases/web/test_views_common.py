"""Helpers shared by the dashboard's view tests (no tests here): what a reconcile tick records,
and a deployment that ran to the end, both through the same commands the worker uses."""

from __future__ import annotations

from releases import actions
from releases.actors import Actor
from releases.models import Deployment, State
from tests import factories

OBSERVED = {
    "blue": {
        "role": "stable",
        "version": "1.0.0",
        "desired": 2,
        "ready": 2,
        "weight": 75,
        "instances": [
            {"id": "blue-1", "version": "1.0.0", "state": "ready"},
            {"id": "blue-2", "version": "1.0.0", "state": "ready"},
        ],
    },
    "green": {
        "role": "canary",
        "version": "1.1.0",
        "desired": 1,
        "ready": 0,
        "weight": 25,
        "instances": [{"id": "green-1", "version": "1.1.0", "state": "starting", "restarts": 2}],
    },
}


def tick(
    d: Deployment,
    *,
    state: str | None = None,
    weights=None,
    step="batch 1 of 2",
    step_index=0,
    progress=None,
    failure="",
) -> None:
    """What a reconcile tick records, through the same command the worker uses."""
    d.refresh_from_db()
    if d.state == State.PENDING:
        assert actions.mark_started(d)
    assert actions.record_tick(
        d,
        observed=OBSERVED,
        endpoint="http://127.0.0.1:9101",
        progress=progress or {},
        step_index=step_index,
        step=step,
        weights=weights if weights is not None else {"stable": 75, "canary": 25},
        message="waiting for green-1 to be ready",
        new_events=[{"kind": "step", "message": "batch 1 of 2: start 1 instance of 1.1.0"}],
        new_state=state,
        failure=failure,
    )
    d.refresh_from_db()


def ship(target, version: str, actor=None) -> Deployment:
    """A deployment of ``version`` that ran to the end."""
    d = factories.make_deployment(target, version, actor=actor)
    tick(d, state=State.SUCCEEDED, weights={"stable": 0, "canary": 100})
    return d


def ui_actor(user) -> Actor:
    return Actor(user=user, channel="ui")
