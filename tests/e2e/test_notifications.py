"""End to end: deployments heard in "Slack" with real processes -- a fleet agent, the rollout
worker (priority, default) and a notify worker -- against a loopback fake of Slack's Web API and
a loopback webhook receiver that hangs (the real services cannot be reached from here)."""

from __future__ import annotations

import pytest

from notifications.models import Delivery, DeliveryStatus, FannedOut
from releases.models import DeploymentEvent
from switchyard import processes
from tests.notifications import helpers
from tests.notifications.fakes import FakeSlack, Receiver

from .test_bluegreen import deploy, setup_service
from .test_canary import FAST_HEALTH, canary, first_release, wait_state
from .test_rolling_deploy import wait_done

pytestmark = pytest.mark.e2e


def start_notify_worker(stack, slack_url: str) -> None:
    stack.supervisor.env["SLACK_API_URL"] = slack_url
    stack.supervisor.env["NOTIFY_TIMEOUT_SECONDS"] = "2"
    stack.supervisor.start("notify", processes.worker_command(concurrency=2, queues="notify"))


def test_a_canarys_message_is_posted_then_updated_in_place_as_it_moves(stack):
    slack = FakeSlack()
    try:
        api = setup_service()
        # the notify worker runs from the start, as in production: the first release's events
        # are fanned out (to no channel) when they happen, not queued for the channel made next
        start_notify_worker(stack, slack.api_url)
        first_release(stack, api)
        stack.wait_for(
            lambda: (
                not DeploymentEvent.objects.exclude(
                    pk__in=FannedOut.objects.values("event_id")
                ).exists()
            ),
            timeout=30,
            what="the first release's events fanned out",
        )
        helpers.slack_channel()
        d = deploy(api, "2.0.0", canary({"set_weight": 25}, {"pause": {}}, {"set_weight": 100}))
        wait_state(stack, api, d["id"], "paused")

        def shows(text):
            return len(slack.messages) == 1 and text in slack.text_of(next(iter(slack.messages)))

        stack.wait_for(lambda: shows("canary 25%"), timeout=30, what="the 25% step in Slack")
        (ts,) = slack.messages
        assert slack.buttons(ts) == ["promote", "abort", "rollback"]

        api.call("post", f"/deployments/{d['id']}/promote")
        assert wait_done(stack, api, d["id"])["state"] == "succeeded"
        stack.wait_for(lambda: shows(":white_check_mark:"), timeout=30, what="success in Slack")
        assert list(slack.messages) == [ts]  # the same message, updated
        assert slack.messages[ts]["updates"] >= 2
        assert slack.buttons(ts) == ["rollback"]
    finally:
        slack.stop()


def test_a_dead_receiver_does_not_delay_a_rollback(stack):
    hanging = Receiver()
    hanging.hang = 60  # accepts the connection, never answers in time
    try:
        api = setup_service()
        first_release(stack, api)
        helpers.channel("webhook", {"url": hanging.url}, {"signing_secret": "whsec_" + "A" * 44})
        helpers.channel("teams", {}, {"webhook_url": hanging.url}, name="teams")
        start_notify_worker(stack, hanging.url + "/api/")
        rolling = {"kind": "rolling", "replicas": 2, "batch_size": 1, "health": FAST_HEALTH}
        d = deploy(api, "2.0.0", {**rolling, "min_ready": "30s"})
        wait_state(stack, api, d["id"], "progressing")
        api.call("post", f"/deployments/{d['id']}/rollback")
        assert wait_done(stack, api, d["id"])["state"] == "rolled_back"
        # the rollback finished while not one delivery to the dead receiver has completed
        assert hanging.requests == []
        assert not Delivery.objects.filter(status=DeliveryStatus.SENT).exists()
    finally:
        hanging.stop()
