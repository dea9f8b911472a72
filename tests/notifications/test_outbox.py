"""Fan-out and delivery through the outbox, against a loopback fake of Slack's Web API and a
loopback webhook receiver (the real services cannot be reached from here)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from notifications import outbox
from notifications.models import Delivery, DeliveryStatus, NotificationChannel, SlackMessage
from releases import actions
from releases.models import AuditEvent
from tests import factories
from tests.notifications import helpers

CANARY = {"kind": "canary", "steps": [{"set_weight": 25}, {"pause": {}}, {"set_weight": 100}]}

pytestmark = pytest.mark.django_db


@pytest.fixture
def deployment(target, admin):
    return factories.make_deployment(target, "1.1.0", strategy=CANARY)


def test_it_posts_one_message_per_deployment_and_updates_it_in_place(fake_slack, deployment, admin):
    channel = helpers.slack_channel()
    rows = helpers.notify(deployment)
    assert [r.status for r in rows] == ["sent"]
    (ts,) = fake_slack.messages
    assert "pending" in fake_slack.text_of(ts)

    actions.pause(factories.api_actor(admin), deployment.pk)
    helpers.notify(deployment)

    assert list(fake_slack.messages) == [ts]
    assert fake_slack.messages[ts]["updates"] == 1
    assert ":double_vertical_bar:" in fake_slack.text_of(ts)
    assert "paused the deployment" in fake_slack.text_of(ts)  # who did what
    assert SlackMessage.objects.get(channel=channel, deployment=deployment).ts == ts


def test_buttons_follow_what_the_state_allows(fake_slack, deployment, admin):
    helpers.slack_channel()
    helpers.notify(deployment)
    (ts,) = fake_slack.messages
    assert fake_slack.buttons(ts) == ["pause", "abort", "rollback"]  # pending: nothing to promote
    actions.abort(factories.api_actor(admin), deployment.pk)
    helpers.notify(deployment)
    assert fake_slack.buttons(ts) == []  # rolling back: nothing to click


def test_moments_that_matter_are_also_thread_replies(fake_slack, target, admin, dev):
    factories.make_policy(dev, required_approvals=1)
    d = factories.make_deployment(target, "1.2.0", strategy=CANARY)
    helpers.slack_channel()
    helpers.notify(d)
    (ts,) = fake_slack.messages
    assert fake_slack.buttons(ts) == ["approve", "reject"]
    assert [r["thread_ts"] for r in fake_slack.replies] == [ts]
    assert "waiting for 1 approval" in fake_slack.replies[0]["text"]


def test_rules_choose_moments_services_and_environments(fake_slack, deployment, receiver):
    helpers.channel(
        "webhook",
        {"url": receiver.url},
        {"signing_secret": "whsec_" + "A" * 44},
        events=["succeeded"],
    )
    other = helpers.channel(
        "webhook", {"url": receiver.url}, {"signing_secret": "whsec_" + "A" * 44}, name="prod"
    )
    other.rules.update(environments=["prod"])
    assert helpers.fan_out(deployment) == []  # started in dev: neither rule matches
    assert receiver.requests == []


def test_fan_out_is_safe_to_run_twice(fake_slack, deployment):
    helpers.slack_channel()
    assert len(helpers.fan_out(deployment)) == 1
    assert helpers.fan_out(deployment) == []
    assert Delivery.objects.count() == 1


def test_a_permanent_error_disables_the_channel_with_the_reason(fake_slack, deployment):
    channel = helpers.slack_channel()
    fake_slack.error = "token_revoked"
    (row,) = helpers.notify(deployment)
    channel.refresh_from_db()
    assert row.status == DeliveryStatus.FAILED and row.attempts == 1
    assert not channel.enabled
    assert "token was revoked" in channel.disabled_reason
    assert AuditEvent.objects.filter(action="notifications.channel_disabled").exists()


def test_a_transient_error_retries_later_with_backoff(fake_slack, deployment):
    channel = helpers.slack_channel()
    fake_slack.status, fake_slack.headers = 429, {"Retry-After": "30"}
    (row,) = helpers.notify(deployment)
    channel.refresh_from_db()
    assert row.status == DeliveryStatus.PENDING and row.attempts == 1
    assert row.next_attempt_at >= timezone.now() + timedelta(seconds=29)  # honours Retry-After
    assert "rate limiting" in row.last_error
    assert channel.enabled

    fake_slack.status = 200
    (row,) = helpers.deliver_due()
    assert row.status == DeliveryStatus.SENT and row.attempts == 2


def test_a_delivery_out_of_attempts_fails_without_disabling(fake_slack, deployment):
    channel = helpers.slack_channel()
    fake_slack.status = 503
    helpers.fan_out(deployment)
    for _ in range(outbox.MAX_ATTEMPTS):
        helpers.deliver_due()
    row = Delivery.objects.get()
    assert row.status == DeliveryStatus.FAILED and row.attempts == outbox.MAX_ATTEMPTS
    channel.refresh_from_db()
    assert channel.enabled


def test_backoff_grows_with_jitter_and_respects_retry_after():
    first = [outbox.backoff(1) for _ in range(50)]
    later = [outbox.backoff(5) for _ in range(50)]
    assert all(1.0 <= s <= 2.0 for s in first) and len(set(first)) > 1
    assert all(16.0 <= s <= 32.0 for s in later)
    assert outbox.backoff(1, retry_after=60) == 60
    assert outbox.backoff(30) <= outbox.BACKOFF_CAP


def test_secrets_from_the_environment_are_read_when_sending(fake_slack, deployment, monkeypatch):
    channel = helpers.slack_channel()
    channel.secrets = outbox.secrets.seal({"bot_token": {"env": "TEST_SLACK_TOKEN"}})
    channel.save()
    (row,) = helpers.notify(deployment)
    assert row.status == DeliveryStatus.FAILED  # unset: a permanent error naming it
    assert "$TEST_SLACK_TOKEN" in row.last_error

    monkeypatch.setenv("TEST_SLACK_TOKEN", fake_slack.TOKEN)
    NotificationChannel.objects.filter(pk=channel.pk).update(enabled=True)
    outbox.send_test(NotificationChannel.objects.get(pk=channel.pk), factories.api_actor())
    (row,) = helpers.deliver_due()
    assert row.status == DeliveryStatus.SENT
