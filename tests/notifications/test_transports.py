"""The transports against loopback receivers that speak the real protocols: a fake of Slack's
Web API that ``slack_sdk`` talks to over HTTP, a Teams webhook and a webhook consumer (the real
services cannot be reached from here), and a real SMTP server (``aiosmtpd``) on 127.0.0.1."""

from __future__ import annotations

import email
import email.policy
import socket

import pytest
from aiosmtpd.controller import Controller
from standardwebhooks.webhooks import Webhook

from integrations.notify import registry
from integrations.notify.base import Notice, TransportError
from integrations.notify.webhook.transport import new_secret
from tests.notifications.fakes import FakeSlack

DEPLOYMENT = {
    "id": 7,
    "service": "api",
    "environment": "prod",
    "state": "progressing",
    "step": {"index": 1, "description": "set weight 25%"},
    "weights": {"stable": 75, "canary": 25},
    "stable_version": "1.0.0",
    "target_version": "1.1.0",
    "analysis": [{"name": "error-rate", "phase": "running"}],
    "created_by": "alice",
}


def notice(**fields) -> Notice:
    values = dict(
        id="sy_1",
        trigger="step",
        title="api 1.1.0 → prod: progressing",
        text="step 2 of 4 started: set weight 25%",
        url="http://switchyard.test/deployments/7/",
        deployment=DEPLOYMENT,
        actions=("promote", "pause", "abort", "rollback"),
        history=("12:00:00 alice started a canary deployment of 1.1.0 (from 1.0.0)",),
    )
    values.update(fields)
    return Notice(**values)


def slack(fake: FakeSlack, **secrets):
    return registry.build(
        "slack",
        {"channel": "C123"},
        secrets or {"bot_token": FakeSlack.TOKEN},
        base_url=fake.api_url,
        timeout=2,
    )


def test_slack_posts_one_message_then_updates_it_in_place(fake_slack):
    transport = slack(fake_slack)
    ref = transport.send(notice())
    assert ref["channel"] == "C123"
    assert fake_slack.buttons(ref["ts"]) == ["promote", "pause", "abort", "rollback"]
    assert "stable 75% / canary 25%" in fake_slack.text_of(ref["ts"])

    done = {**DEPLOYMENT, "state": "succeeded", "weights": {"stable": 0, "canary": 100}}
    again = transport.send(notice(deployment=done, actions=("rollback",)), ref=ref)

    assert again == ref
    assert list(fake_slack.messages) == [ref["ts"]]  # still one message
    assert fake_slack.messages[ref["ts"]]["updates"] == 1
    assert fake_slack.buttons(ref["ts"]) == ["rollback"]


def test_slack_replies_in_the_deployments_thread(fake_slack):
    transport = slack(fake_slack)
    ref = transport.send(notice())
    transport.send(notice(trigger="analysis_failed", text="error rate 12%"), ref=ref, reply=True)
    assert [r["thread_ts"] for r in fake_slack.replies] == [ref["ts"]]
    assert "error rate 12%" in fake_slack.replies[0]["text"]


def test_slack_posts_a_new_message_when_the_old_one_was_deleted(fake_slack):
    transport = slack(fake_slack)
    ref = transport.send(notice())
    del fake_slack.messages[ref["ts"]]
    new = transport.send(notice(), ref=ref)
    assert new["ts"] != ref["ts"] and new["ts"] in fake_slack.messages


@pytest.mark.parametrize("error", ["token_revoked", "channel_not_found", "not_in_channel"])
def test_slack_errors_no_retry_can_fix_are_permanent(fake_slack, error):
    fake_slack.error = error
    with pytest.raises(TransportError) as caught:
        slack(fake_slack).send(notice())
    assert caught.value.permanent
    assert error in caught.value.message


def test_slack_rate_limit_is_transient_and_says_when_to_retry(fake_slack):
    fake_slack.status, fake_slack.headers = 429, {"Retry-After": "7"}
    with pytest.raises(TransportError) as caught:
        slack(fake_slack).send(notice())
    assert not caught.value.permanent
    assert caught.value.retry_after == 7


def test_slack_that_does_not_answer_is_a_transient_timeout(fake_slack):
    fake_slack.hang = 3
    with pytest.raises(TransportError) as caught:
        slack(fake_slack).send(notice())
    assert not caught.value.permanent


def test_slack_incoming_webhook_posts_blocks(receiver):
    receiver.answer = lambda request: (200, b"ok", {})
    transport = registry.build("slack", {}, {"webhook_url": receiver.url + "/services/T/B/X"})
    assert transport.send(notice()) is None
    body = receiver.requests[0]["json"]
    assert body["text"].startswith("api 1.1.0 → prod")
    assert any(b["type"] == "actions" for b in body["blocks"])


def test_slack_incoming_webhook_that_was_revoked_is_permanent(receiver):
    receiver.answer = lambda request: (403, b"invalid_token", {})
    transport = registry.build("slack", {}, {"webhook_url": receiver.url + "/services/T/B/X"})
    with pytest.raises(TransportError) as caught:
        transport.send(notice())
    assert caught.value.permanent


def test_teams_gets_an_adaptive_card(receiver):
    receiver.status = 202
    registry.build("teams", {}, {"webhook_url": receiver.url + "/workflows/1"}).send(notice())
    body = receiver.requests[0]["json"]
    attachment = body["attachments"][0]
    assert body["type"] == "message"
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard"
    facts = {f["title"]: f["value"] for f in card["body"][2]["facts"]}
    assert facts["Traffic"] == "stable 75% / canary 25%"
    assert card["actions"][0]["url"] == "http://switchyard.test/deployments/7/"


@pytest.mark.parametrize(("status", "permanent"), [(500, False), (503, False), (404, True)])
def test_teams_errors_are_sorted_by_status(receiver, status, permanent):
    receiver.status = status
    with pytest.raises(TransportError) as caught:
        registry.build("teams", {}, {"webhook_url": receiver.url}).send(notice())
    assert caught.value.permanent is permanent


def test_webhook_body_verifies_with_the_standard_webhooks_library(receiver):
    secret = new_secret()
    registry.build("webhook", {"url": receiver.url + "/hook"}, {"signing_secret": secret}).send(
        notice(id="sy_42")
    )
    request = receiver.requests[0]
    payload = Webhook(secret).verify(request["raw"], request["headers"])  # the receiver's check
    assert request["headers"]["webhook-id"] == "sy_42"
    assert payload["type"] == "deployment.step"
    assert payload["data"]["deployment"]["target_version"] == "1.1.0"


def test_webhook_signed_with_another_secret_does_not_verify(receiver):
    registry.build("webhook", {"url": receiver.url}, {"signing_secret": new_secret()}).send(
        notice()
    )
    request = receiver.requests[0]
    with pytest.raises(Exception, match="signature"):
        Webhook(new_secret()).verify(request["raw"], request["headers"])


def test_configs_are_validated_by_their_transport():
    assert registry.validate("slack", {}, {}) == [
        ("secrets", "give either bot_token or webhook_url")
    ]
    assert ("config.channel", "is required with a bot token") in registry.validate(
        "slack", {}, {"bot_token": "x"}
    )
    assert registry.validate("webhook", {"url": "ftp://x"}, {"signing_secret": "nope!"}) == [
        ("config.url", "must be an http(s):// URL"),
        ("secrets.signing_secret", "must be whsec_ followed by base64"),
    ]
    assert registry.validate("email", {"to": ["not-an-address"]}, {}) == [
        ("config.to[0]", "is not an email address")
    ]
    assert registry.validate("carrier-pigeon", {}, {})[0][0] == "kind"


class Inbox:
    def __init__(self, refuse=False):
        self.messages = []
        self.refuse = refuse

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.refuse:
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(envelope)
        return "250 Message accepted"


@pytest.fixture
def smtp(settings):
    """A real SMTP server (aiosmtpd) on 127.0.0.1, used through Django's SMTP backend."""
    with socket.socket() as probe:  # a free port (the controller checks it with a connection)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
    yield inbox
    controller.stop()


def test_email_is_sent_through_smtp(smtp):
    registry.build("email", {"to": ["oncall@example.com"]}, {}).send(notice())
    envelope = smtp.messages[0]
    assert envelope.rcpt_tos == ["oncall@example.com"]
    message = email.message_from_bytes(envelope.content, policy=email.policy.default)
    assert message["Subject"].strip() == "[Switchyard] api 1.1.0 → prod: progressing"
    assert message.get_body(("html",)) is not None
    assert "stable 75% / canary 25%" in message.get_body(("plain",)).get_content()


def test_email_refused_by_every_recipient_is_permanent(smtp):
    smtp.refuse = True
    with pytest.raises(TransportError) as caught:
        registry.build("email", {"to": ["ghost@example.com"]}, {}).send(notice())
    assert caught.value.permanent


def test_email_with_no_smtp_server_is_transient(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", 9  # nothing listens on discard
    with pytest.raises(TransportError) as caught:
        registry.build("email", {"to": ["oncall@example.com"]}, {}).send(notice())
    assert not caught.value.permanent
