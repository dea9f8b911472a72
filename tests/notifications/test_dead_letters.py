"""Dead letters: deliveries that failed for good or ran out of attempts, listed per channel (API
and page) and sent again with "retry" (admins, audited), against a loopback fake of Slack's Web
API (the real one cannot be reached from here)."""

from __future__ import annotations

import pytest

from notifications import outbox
from notifications.models import Delivery, DeliveryStatus
from releases.models import AuditEvent
from tests import factories
from tests.notifications import helpers

CANARY = {"kind": "canary", "steps": [{"set_weight": 25}, {"pause": {}}, {"set_weight": 100}]}

pytestmark = pytest.mark.django_db


@pytest.fixture
def deployment(target, admin):
    return factories.make_deployment(target, "1.1.0", strategy=CANARY)


def out_of_attempts(fake_slack, deployment):
    channel = helpers.slack_channel()
    fake_slack.status = 503
    helpers.fan_out(deployment)
    for _ in range(outbox.MAX_ATTEMPTS):
        helpers.deliver_due()
    fake_slack.status = 200
    return channel, Delivery.objects.get()


def test_a_delivery_out_of_attempts_is_a_dead_letter_and_retry_sends_it(
    client, admin, fake_slack, deployment
):
    channel, row = out_of_attempts(fake_slack, deployment)
    assert row.status == DeliveryStatus.FAILED
    client.force_login(admin)
    dead = client.get(f"/api/v1/notifications/channels/{channel.pk}/dead-letters").json()
    assert [d["id"] for d in dead] == [row.pk]
    assert dead[0]["attempts"] == outbox.MAX_ATTEMPTS and "rate limiting" in dead[0]["last_error"]

    response = client.post(f"/api/v1/notifications/deliveries/{row.pk}/retry")
    assert response.status_code == 202
    assert response.json()["status"] == "pending" and response.json()["attempts"] == 0
    (sent,) = helpers.deliver_due()
    assert sent.status == DeliveryStatus.SENT and len(fake_slack.messages) == 1
    assert client.get(f"/api/v1/notifications/channels/{channel.pk}/dead-letters").json() == []
    retried = AuditEvent.objects.get(action="notifications.delivery_retry")
    assert retried.actor_name == "admin" and retried.data["delivery"] == row.pk
    assert retried.data["was"] == "failed"


def test_a_permanent_failure_disables_the_channel_and_retry_waits_for_it(
    client, admin, fake_slack, deployment
):
    channel = helpers.slack_channel()
    fake_slack.error = "channel_not_found"
    (row,) = helpers.notify(deployment)
    channel.refresh_from_db()
    assert not channel.enabled and "channel_not_found" in channel.disabled_reason
    client.force_login(admin)
    page = client.get("/notifications/").content.decode()
    assert "channel_not_found" in page and f'data-delivery="{row.pk}"' in page

    refused = client.post(f"/api/v1/notifications/deliveries/{row.pk}/retry")
    assert refused.status_code == 409
    assert "enable it before retrying" in refused.json()["message"]
    # the page refuses with the same words and changes nothing
    shown = client.post(f"/notifications/deliveries/{row.pk}/retry/", follow=True)
    assert refused.json()["message"] in shown.content.decode().replace("&#x27;", "'")
    row.refresh_from_db()
    assert row.status == DeliveryStatus.FAILED

    fake_slack.error = None
    client.post(f"/notifications/channels/{channel.pk}/enable/")
    client.post(f"/notifications/deliveries/{row.pk}/retry/")
    (sent,) = helpers.deliver_due()
    assert sent.pk == row.pk and sent.status == DeliveryStatus.SENT
    assert AuditEvent.objects.get(action="notifications.delivery_retry").channel == "ui"


def test_only_dead_letters_are_retried(client, admin, fake_slack, deployment):
    helpers.slack_channel()
    (row,) = helpers.notify(deployment)
    assert row.status == DeliveryStatus.SENT
    client.force_login(admin)
    response = client.post(f"/api/v1/notifications/deliveries/{row.pk}/retry")
    assert response.status_code == 409 and "not a dead letter" in response.json()["message"]
    missing = client.post("/api/v1/notifications/deliveries/999999/retry")
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"


def test_a_deployer_may_not_retry(client, dev, fake_slack, deployment):
    _, row = out_of_attempts(fake_slack, deployment)
    client.force_login(factories.make_persona("deployer", dev))
    response = client.post(f"/api/v1/notifications/deliveries/{row.pk}/retry")
    assert response.status_code == 403 and response.json()["code"] == "forbidden"
    page = client.post(f"/notifications/deliveries/{row.pk}/retry/", follow=True)
    assert response.json()["message"] in page.content.decode().replace("&#x27;", "'")
    row.refresh_from_db()
    assert row.status == DeliveryStatus.FAILED
    assert not AuditEvent.objects.filter(action="notifications.delivery_retry").exists()
