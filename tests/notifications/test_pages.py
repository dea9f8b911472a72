"""The channel form on the Notifications page: create, edit and delete channels through the same
``notifications.config`` functions (role checks, validation, audit) as the API, with secrets as
write-only fields -- never rendered back, kept when left empty, removable."""

from __future__ import annotations

import pytest

from notifications import secrets
from notifications.models import NotificationChannel
from releases.models import AuditEvent
from tests import factories

pytestmark = pytest.mark.django_db

TOKEN = "xoxb-page-secret-0123456789"


def text(response) -> str:
    return response.content.decode().replace("&#x27;", "'")


def create_slack(client, **extra):
    form = {"kind": "slack", "name": "deploys", "config_channel": "C42", "secret_bot_token": TOKEN}
    return client.post("/notifications/channels/new/", {**form, **extra})


def test_an_admin_creates_a_channel_from_the_form_and_never_sees_its_secret(client, admin):
    client.force_login(admin)
    chooser = client.get("/notifications/channels/new/")
    assert chooser.status_code == 200 and 'name="kind"' in text(chooser)
    form = client.get("/notifications/channels/new/?kind=slack")
    assert 'type="password" name="secret_bot_token"' in text(form)

    response = create_slack(client)
    assert response.status_code == 302
    channel = NotificationChannel.objects.get()
    assert channel.kind == "slack" and channel.config == {"channel": "C42"}
    assert secrets.resolve(channel.secrets) == {"bot_token": TOKEN}
    assert TOKEN not in channel.secrets  # encrypted
    created = AuditEvent.objects.get(action="notifications.channel_create")
    assert created.channel == "ui" and TOKEN not in str(created.data)
    for page in (
        client.get("/notifications/"),
        client.get(f"/notifications/channels/{channel.pk}/edit/"),
    ):
        assert page.status_code == 200
        assert TOKEN not in text(page)
    assert "set: stored" in text(client.get(f"/notifications/channels/{channel.pk}/edit/"))
    nav = text(client.get("/notifications/"))
    assert '<a href="/notifications/" aria-current="page">Notifications</a>' in nav


def test_editing_keeps_an_empty_secret_and_can_swap_it_for_an_environment_variable(client, admin):
    client.force_login(admin)
    create_slack(client)
    channel = NotificationChannel.objects.get()
    url = f"/notifications/channels/{channel.pk}/edit/"
    response = client.post(
        url, {"name": "releases", "config_channel": "C43", "secret_bot_token": ""}
    )
    assert response.status_code == 302
    channel.refresh_from_db()
    assert channel.name == "releases" and channel.config == {"channel": "C43"}
    assert secrets.resolve(channel.secrets) == {"bot_token": TOKEN}  # kept

    client.post(url, {"name": "releases", "config_channel": "C43", "env_bot_token": "SLACK_BOT"})
    channel.refresh_from_db()
    assert secrets.describe(channel.secrets) == {"bot_token": "env:SLACK_BOT"}
    assert 'value="SLACK_BOT"' in text(client.get(url))  # a variable's name is no secret
    refused = client.post(
        url,
        {"name": "releases", "config_channel": "C43", "clear_bot_token": "on", "env_bot_token": ""},
    )
    assert refused.status_code == 400 and "give either bot_token or webhook_url" in text(refused)
    channel.refresh_from_db()
    assert secrets.describe(channel.secrets) == {"bot_token": "env:SLACK_BOT"}
    update = AuditEvent.objects.filter(action="notifications.channel_update")
    assert update.count() == 2 and all(TOKEN not in str(e.data) for e in update)


def test_an_invalid_form_lists_the_problems_and_keeps_no_secret(client, admin):
    client.force_login(admin)
    response = client.post(
        "/notifications/channels/new/",
        {"kind": "webhook", "name": "hook", "config_url": "nope", "secret_signing_secret": "bad"},
    )
    assert response.status_code == 400
    body = text(response)
    assert "config.url" in body and "secrets.signing_secret" in body
    assert 'value="nope"' in body  # plain settings are kept for the next try
    assert 'value="bad"' not in body  # secrets are not
    assert not NotificationChannel.objects.exists()


def test_a_name_taken_is_refused_as_the_api_refuses_it(client, admin):
    client.force_login(admin)
    create_slack(client)
    api = client.post(
        "/api/v1/notifications/channels",
        {
            "name": "deploys",
            "kind": "slack",
            "config": {"channel": "C1"},
            "secrets": {"bot_token": "x"},
        },
        content_type="application/json",
    )
    assert api.status_code == 409
    page = create_slack(client)
    assert page.status_code == 400 and api.json()["message"] in text(page)
    assert NotificationChannel.objects.count() == 1


def test_a_deployer_gets_the_apis_refusal_and_changes_nothing(client, admin, dev):
    client.force_login(admin)
    create_slack(client)
    channel = NotificationChannel.objects.get()
    client.force_login(factories.make_persona("deployer", dev))
    api = client.patch(
        f"/api/v1/notifications/channels/{channel.pk}",
        {"name": "mine"},
        content_type="application/json",
    )
    assert api.status_code == 403
    form = client.post(
        f"/notifications/channels/{channel.pk}/edit/", {"name": "mine", "config_channel": "C1"}
    )
    assert form.status_code == 400 and api.json()["message"] in text(form)
    deleted = client.post(f"/notifications/channels/{channel.pk}/delete/", follow=True)
    assert "You may not" in text(deleted)
    created = client.post(
        "/notifications/channels/new/",
        {"kind": "teams", "name": "t", "secret_webhook_url": "https://x.example/hook"},
    )
    assert created.status_code == 400 and "You may not" in text(created)
    channel.refresh_from_db()
    assert channel.name == "deploys"
    assert NotificationChannel.objects.count() == 1


def test_an_admin_deletes_a_channel_from_the_page(client, admin):
    client.force_login(admin)
    create_slack(client)
    channel = NotificationChannel.objects.get()
    response = client.post(f"/notifications/channels/{channel.pk}/delete/", follow=True)
    assert "Channel deploys deleted." in text(response)
    assert not NotificationChannel.objects.exists()
    assert AuditEvent.objects.filter(action="notifications.channel_delete").exists()


def test_email_recipients_are_comma_separated(client, admin):
    client.force_login(admin)
    response = client.post(
        "/notifications/channels/new/",
        {"kind": "email", "name": "mail", "config_to": "a@example.com, b@example.com"},
    )
    assert response.status_code == 302
    assert NotificationChannel.objects.get().config == {"to": ["a@example.com", "b@example.com"]}
    edit = client.get(f"/notifications/channels/{NotificationChannel.objects.get().pk}/edit/")
    assert 'value="a@example.com, b@example.com"' in text(edit)
