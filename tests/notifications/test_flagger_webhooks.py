"""Flagger's event and post-rollout webhooks of a pasted Canary, called by the notifications
fan-out once per event, against the loopback webhook receiver (tests.notifications.fakes, a
real HTTP server on 127.0.0.1)."""

from __future__ import annotations

import pytest

from releases import actions
from releases.models import DeploymentEvent
from tests import factories
from tests.notifications import helpers

pytestmark = pytest.mark.django_db


def canary(receiver) -> dict:
    return {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "Canary",
        "metadata": {"name": "podinfo", "namespace": "test"},
        "spec": {
            "analysis": {
                "interval": "1m",
                "stepWeight": 50,
                "webhooks": [
                    {"name": "events", "type": "event", "url": f"{receiver.url}/events"},
                    {
                        "name": "done",
                        "type": "post-rollout",
                        "url": f"{receiver.url}/done",
                        "timeout": "5s",
                        "metadata": {"channel": "#releases"},
                    },
                ],
            }
        },
    }


def posted(receiver, path):
    return [r["json"] for r in receiver.requests if r["path"] == path]


def test_every_event_is_posted_once_and_the_outcome_to_post_rollout(
    receiver, target, admin, django_capture_on_commit_callbacks
):
    deployment = factories.make_deployment(target, "1.1.0", strategy=canary(receiver))
    assert [h["type"] for h in deployment.strategy["webhooks"]] == ["post-rollout", "event"]

    with django_capture_on_commit_callbacks(execute=True):
        helpers.fan_out(deployment)
    (started,) = posted(receiver, "/events")
    assert {k: started[k] for k in ("name", "namespace", "checksum")} == {
        "name": "podinfo",
        "namespace": "test",
        "checksum": "1.1.0",
    }
    assert started["metadata"]["eventType"] == "Normal"
    assert started["metadata"]["eventMessage"] and started["metadata"]["timestamp"].isdigit()
    assert posted(receiver, "/done") == []

    actions.abort(factories.api_actor(admin), deployment.pk)  # rolling back: not ended yet
    with django_capture_on_commit_callbacks(execute=True):
        helpers.fan_out(deployment)
    assert posted(receiver, "/done") == []
    # the event the reconcile loop records when the rollback is done (no fleet runs here)
    DeploymentEvent.objects.create(
        deployment=deployment, kind="state", message="rolled back", data={"state": "rolled_back"}
    )
    with django_capture_on_commit_callbacks(execute=True):
        helpers.fan_out(deployment)  # again: the events already told are not posted twice

    events = posted(receiver, "/events")
    assert len(events) > 1 and events[0] == started
    assert any(e["metadata"]["eventType"] == "Warning" for e in events[1:])
    (done,) = posted(receiver, "/done")
    assert (done["phase"], done["metadata"]) == ("Failed", {"channel": "#releases"})
