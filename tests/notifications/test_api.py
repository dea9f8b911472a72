"""The notifications API and page: channels with write-only secrets, rules, test messages."""

from __future__ import annotations

import pytest

from notifications.models import Delivery, NotificationChannel
from releases.models import AuditEvent
from tests import factories

pytestmark = pytest.mark.django_db

SLACK = {
    "name": "deploys",
    "kind": "slack",
    "config": {"channel": "C123"},
    "secrets": {"bot_token": "xoxb-very-secret"},
}


def test_an_admin_creates_a_channel_whose_secrets_are_never_shown(client, admin):
    client.force_login(admin)
    response = client.post("/api/v1/notifications/channels", SLACK, content_type="application/json")
    assert response.status_code == 201
    body = response.json()
    assert body["secrets"] == {"bot_token": "stored"}
    assert "xoxb-very-secret" not in response.content.decode()
    assert "xoxb-very-secret" not in NotificationChannel.objects.get().secrets  # encrypted
    listed = client.get("/api/v1/notifications/channels").content.decode()
    assert "xoxb-very-secret" not in listed
    event = AuditEvent.objects.get(action="notifications.channel_create")
    assert "xoxb-very-secret" not in str(event.data)


def test_a_secret_may_name_an_environment_variable(client, admin):
    client.force_login(admin)
    payload = {**SLACK, "secrets": {"bot_token": {"env": "SLACK_BOT_TOKEN"}}}
    body = client.post(
        "/api/v1/notifications/channels", payload, content_type="application/json"
    ).json()
    assert body["secrets"] == {"bot_token": "env:SLACK_BOT_TOKEN"}


def test_a_deployer_may_not_create_a_channel(client, dev):
    client.force_login(factories.make_persona("deployer", dev))
    response = client.post("/api/v1/notifications/channels", SLACK, content_type="application/json")
    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"


def test_an_invalid_channel_lists_every_problem(client, admin):
    client.force_login(admin)
    payload = {"name": "hook", "kind": "webhook", "config": {"url": "nope"}, "secrets": {}}
    response = client.post(
        "/api/v1/notifications/channels", payload, content_type="application/json"
    )
    assert response.status_code == 422
    paths = [e["path"] for e in response.json()["details"]["errors"]]
    assert paths == ["config.url", "secrets.signing_secret"]


def test_rules_name_known_moments(client, admin):
    client.force_login(admin)
    channel = client.post(
        "/api/v1/notifications/channels", SLACK, content_type="application/json"
    ).json()
    bad = client.post(
        "/api/v1/notifications/rules",
        {"channel": channel["id"], "events": ["exploded"]},
        content_type="application/json",
    )
    assert bad.status_code == 422
    good = client.post(
        "/api/v1/notifications/rules",
        {"channel": channel["id"], "events": ["rolled_back"], "environments": ["prod"]},
        content_type="application/json",
    )
    assert good.status_code == 201
    assert client.get("/api/v1/notifications/rules").json()[0]["events"] == ["rolled_back"]


def test_send_a_test_message_queues_a_delivery(client, admin):
    client.force_login(admin)
    channel = client.post(
        "/api/v1/notifications/channels", SLACK, content_type="application/json"
    ).json()
    response = client.post(f"/api/v1/notifications/channels/{channel['id']}/test")
    assert response.status_code == 202
    assert response.json()["status"] == "pending"
    assert Delivery.objects.get().trigger == "test"
    log = client.get(f"/api/v1/notifications/channels/{channel['id']}/deliveries").json()
    assert [row["trigger"] for row in log] == ["test"]


def test_the_page_shows_channels_and_their_delivery_log(client, admin):
    client.force_login(admin)
    channel = client.post(
        "/api/v1/notifications/channels", SLACK, content_type="application/json"
    ).json()
    NotificationChannel.objects.filter(pk=channel["id"]).update(
        enabled=False, disabled_reason="Slack: the bot token was revoked (token_revoked)"
    )
    page = client.get("/notifications/").content.decode()
    assert "deploys" in page and "token was revoked" in page and "Enable again" in page
    assert "xoxb-very-secret" not in page


def test_a_viewer_reads_the_page_but_cannot_send_a_test(client, admin, dev):
    channel = NotificationChannel.objects.create(name="c", kind="email", config={"to": ["a@b.c"]})
    client.force_login(factories.make_persona("viewer", dev))
    assert client.get("/notifications/").status_code == 200
    client.post(f"/notifications/channels/{channel.pk}/test/")
    assert not Delivery.objects.exists()


def test_secrets_that_cannot_be_decrypted_are_a_4xx_until_given_again(client, admin):
    client.force_login(admin)
    channel = client.post(
        "/api/v1/notifications/channels", SLACK, content_type="application/json"
    ).json()
    NotificationChannel.objects.filter(pk=channel["id"]).update(secrets="gAAAA-not-a-token")
    url = f"/api/v1/notifications/channels/{channel['id']}"
    renamed = client.patch(url, {"name": "other"}, content_type="application/json")
    assert renamed.status_code == 422
    assert "cannot be read" in renamed.json()["message"]
    again = client.patch(
        url, {"secrets": {"bot_token": "xoxb-new"}}, content_type="application/json"
    )
    assert again.status_code == 200 and again.json()["secrets"] == {"bot_token": "stored"}
