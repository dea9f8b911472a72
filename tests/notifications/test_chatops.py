"""Slack chat-ops: requests signed with ``slack_sdk``'s own signature code, as Slack signs them
(Slack cannot reach this machine); ``users.info`` answered by a loopback fake of the Web API."""

from __future__ import annotations

import json
import re
import time
from datetime import timedelta
from urllib.parse import urlencode

import pytest
from django.utils import timezone
from slack_sdk.signature import SignatureVerifier

from notifications.models import ChatUser, LinkCode
from releases.models import AuditEvent, Deployment, State
from tests import factories

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
CANARY = {"kind": "canary", "steps": [{"set_weight": 25}, {"pause": {}}, {"set_weight": 100}]}

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def signing_secret(settings):
    settings.SLACK_SIGNING_SECRET = SECRET


def signed(body: str, *, secret=SECRET, at=None) -> dict:
    timestamp = str(int(at if at is not None else time.time()))
    signature = SignatureVerifier(secret).generate_signature(timestamp=timestamp, body=body)
    return {
        "HTTP_X_SLACK_REQUEST_TIMESTAMP": timestamp,
        "HTTP_X_SLACK_SIGNATURE": signature,
    }


def click(client, action, deployment_id, user="U1", **signing):
    payload = {
        "type": "block_actions",
        "team": {"id": "T1"},
        "user": {"id": user, "username": user.lower()},
        "actions": [{"action_id": f"switchyard.{action}", "value": f"{action}:{deployment_id}"}],
    }
    body = urlencode({"payload": json.dumps(payload)})
    return client.post(
        "/chatops/slack/interactivity",
        body,
        content_type="application/x-www-form-urlencoded",
        **signed(body, **signing),
    )


def command(client, text, user="U1"):
    body = urlencode({"command": "/switchyard", "text": text, "team_id": "T1", "user_id": user})
    return client.post(
        "/chatops/slack/commands",
        body,
        content_type="application/x-www-form-urlencoded",
        **signed(body),
    )


def link(user, slack_user="U1"):
    return ChatUser.objects.create(team_id="T1", slack_user_id=slack_user, user=user)


@pytest.fixture
def awaiting(target, dev, admin):
    factories.make_policy(dev, required_approvals=1)
    return factories.make_deployment(target, "1.1.0", strategy=CANARY)


def test_an_approver_clicking_approve_advances_the_deployment(client, awaiting, dev):
    link(factories.make_persona("approver", dev), "U1")
    assert awaiting.state == State.AWAITING_APPROVAL
    response = click(client, "approve", awaiting.pk)
    assert response.status_code == 200
    awaiting.refresh_from_db()
    assert awaiting.state == State.PENDING
    event = AuditEvent.objects.get(action="deployment.approve")
    assert event.channel == "chat" and event.actor_name == "approver (slack u1)"


def test_a_viewer_clicking_approve_is_refused_and_audited(client, awaiting, dev):
    link(factories.make_persona("viewer", dev), "U2")
    response = click(client, "approve", awaiting.pk, user="U2")
    assert response.status_code == 200
    awaiting.refresh_from_db()
    assert awaiting.state == State.AWAITING_APPROVAL
    refused = AuditEvent.objects.get(action="chat.refused")
    assert refused.channel == "chat"
    assert refused.data["code"] == "forbidden"
    assert "needs the approver role" in refused.data["message"]


def test_the_slash_command_answers_a_refusal_with_the_same_reason(client, awaiting, dev):
    link(factories.make_persona("viewer", dev), "U2")
    answer = command(client, f"approve {awaiting.pk}", user="U2").json()
    assert answer["response_type"] == "ephemeral"
    assert "You may not approve the deployment here" in answer["text"]


def test_a_deployer_pauses_and_promotes_by_service_and_environment(client, target, dev, admin):
    d = factories.make_deployment(target, "1.1.0", strategy=CANARY)
    link(factories.make_persona("deployer", dev), "U3")
    assert "Done (pause)" in command(client, "pause api dev", user="U3").json()["text"]
    d.refresh_from_db()
    assert d.state == State.PAUSED
    assert "*paused*" in command(client, "status api", user="U3").json()["text"]


def test_deploy_from_slack_starts_a_deployment(client, target, dev):
    factories.make_release(target.service, "2.0.0")
    link(factories.make_persona("deployer", dev), "U3")
    answer = command(client, "deploy api 2.0.0 to dev", user="U3").json()["text"]
    assert answer.startswith("Started: #")
    d = Deployment.objects.get()
    assert d.created_via == "chat" and d.release.version == "2.0.0"


def test_a_tampered_request_is_refused_with_no_effect(client, awaiting, dev):
    link(factories.make_persona("approver", dev), "U1")
    payload = {
        "type": "block_actions",
        "team": {"id": "T1"},
        "user": {"id": "U1"},
        "actions": [{"action_id": "switchyard.approve", "value": f"approve:{awaiting.pk}"}],
    }
    body = urlencode({"payload": json.dumps(payload)})
    headers = signed(body.replace("approve", "reject"))  # signed for another body
    response = client.post(
        "/chatops/slack/interactivity",
        body,
        content_type="application/x-www-form-urlencoded",
        **headers,
    )
    assert response.status_code == 401
    awaiting.refresh_from_db()
    assert awaiting.state == State.AWAITING_APPROVAL


def test_unsigned_old_and_replayed_requests_are_refused(client, awaiting, dev):
    link(factories.make_persona("deployer", dev), "U1")
    body = urlencode({"text": "help", "team_id": "T1", "user_id": "U1"})
    unsigned = client.post(
        "/chatops/slack/commands", body, content_type="application/x-www-form-urlencoded"
    )
    assert unsigned.status_code == 401
    old = click(client, "abort", awaiting.pk, at=time.time() - 6 * 60)
    assert old.status_code == 401
    headers = signed(body)
    first = client.post(
        "/chatops/slack/commands", body, content_type="application/x-www-form-urlencoded", **headers
    )
    again = client.post(
        "/chatops/slack/commands", body, content_type="application/x-www-form-urlencoded", **headers
    )
    assert first.status_code == 200 and again.status_code == 401
    assert "replay" in again.json()["message"]
    awaiting.refresh_from_db()
    assert awaiting.state == State.AWAITING_APPROVAL


def test_an_unlinked_slack_user_is_told_to_link(client, awaiting):
    answer = command(client, f"abort {awaiting.pk}", user="U9").json()["text"]
    assert "not linked to a Switchyard user" in answer


def test_a_verified_email_links_the_slack_user(client, awaiting, dev, settings, fake_slack):
    settings.SLACK_BOT_TOKEN = fake_slack.TOKEN
    approver = factories.make_persona("approver", dev)
    fake_slack.users["U7"] = {
        "id": "U7",
        "is_email_confirmed": True,
        "profile": {"email": approver.email.upper()},
    }
    click(client, "approve", awaiting.pk, user="U7")
    awaiting.refresh_from_db()
    assert awaiting.state == State.PENDING
    assert ChatUser.objects.get(slack_user_id="U7").how == "verified_email"


def test_an_unverified_email_does_not_link(client, awaiting, dev, settings, fake_slack):
    settings.SLACK_BOT_TOKEN = fake_slack.TOKEN
    approver = factories.make_persona("approver", dev)
    fake_slack.users["U8"] = {
        "id": "U8",
        "is_email_confirmed": False,
        "profile": {"email": approver.email},
    }
    click(client, "approve", awaiting.pk, user="U8")
    awaiting.refresh_from_db()
    assert awaiting.state == State.AWAITING_APPROVAL
    assert not ChatUser.objects.filter(slack_user_id="U8").exists()


# --- self-service link: a one-time code from the page, redeemed in Slack ----------------------


def code_for(client, user) -> str:
    client.force_login(user)
    page = client.post("/notifications/slack-links/code/", follow=True).content.decode()
    client.logout()
    match = re.search(r"/switchyard link ([A-Z0-9]{4}-[A-Z0-9]{4})", page)
    assert match, page
    return match.group(1)


def test_a_user_links_their_slack_account_with_a_one_time_code(client, awaiting, dev):
    approver = factories.make_persona("approver", dev)
    code = code_for(client, approver)
    assert not LinkCode.objects.filter(digest__icontains=code.replace("-", "")).exists()  # hashed
    answer = command(client, f"link {code.lower()}", user="U5").json()["text"]
    assert answer == "Linked: in Switchyard you are now approver."
    link_row = ChatUser.objects.get(slack_user_id="U5")
    assert link_row.user == approver and link_row.how == "link_code"
    audited = AuditEvent.objects.get(action="notifications.slack_link")
    assert audited.channel == "chat" and audited.actor_name == "approver (slack U5)"
    # the link is made once: the code does not work again, for anyone
    assert "unknown, used or expired" in command(client, f"link {code}", user="U6").json()["text"]
    assert not ChatUser.objects.filter(slack_user_id="U6").exists()
    # and the Slack user now acts as the approver
    click(client, "approve", awaiting.pk, user="U5")
    awaiting.refresh_from_db()
    assert awaiting.state == State.PENDING


def test_an_expired_code_or_a_linked_account_is_refused(client, awaiting, dev, admin):
    deployer = factories.make_persona("deployer", dev)
    code = code_for(client, deployer)
    LinkCode.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert "unknown, used or expired" in command(client, f"link {code}", user="U5").json()["text"]
    link(admin, "U5")
    fresh = code_for(client, deployer)
    answer = command(client, f"link {fresh}", user="U5").json()["text"]
    assert "already acts as admin" in answer
    assert ChatUser.objects.get(slack_user_id="U5").user == admin
    # a new code replaces the unused one
    newer = code_for(client, deployer)
    assert newer != fresh and LinkCode.objects.filter(used_at__isnull=True).count() == 1
    assert "unknown, used or expired" in command(client, f"link {fresh}", user="U9").json()["text"]


def test_link_without_a_code_answers_how():
    from notifications.chatops import commands

    with pytest.raises(commands.InvalidRequest, match="Give the link code"):
        commands.parse("link")
    assert commands.parse("link ab12-cd34").code == "ab12-cd34"


# --- refusals answer as the UI and API do ------------------------------------------------------


def test_a_refused_click_answers_with_the_apis_own_message(client, awaiting, dev, receiver):
    viewer = factories.make_persona("viewer", dev)
    link(viewer, "U2")
    client.force_login(viewer)
    api = client.post(f"/api/v1/deployments/{awaiting.pk}/approve", {}, "application/json")
    client.logout()
    assert api.status_code == 403
    answer = command(client, f"approve {awaiting.pk}", user="U2").json()["text"]
    assert answer == f":no_entry: {api.json()['message']}"


# --- answers through response_url are retried on transient failures ---------------------------


class Flaky:
    """The loopback stand-in for Slack's response_url (Slack cannot reach here): ``fail`` answers
    of ``status`` first, then 200."""

    def __init__(self, receiver, fail: int, status: int):
        self.left = fail
        receiver.answer = self.answer
        self.status = status

    def answer(self, request):
        if self.left > 0:
            self.left -= 1
            return self.status, {"ok": False}, {"Retry-After": "0"}
        return 200, {"ok": True}, {}


def test_a_click_answer_is_retried_after_transient_failures(receiver, monkeypatch):
    from notifications import outbox, tasks

    delays = []
    monkeypatch.setattr(outbox, "backoff", lambda n, after=None: delays.append((n, after)) or 0)
    Flaky(receiver, fail=2, status=503)
    tasks.respond.apply(args=(receiver.url + "/actions/T1", {"text": "Done"}))
    assert len(receiver.requests) == 3
    assert receiver.requests[-1]["json"] == {"text": "Done"}
    assert delays == [(1, 0.0), (2, 0.0)]  # backoff after each failure, Retry-After honoured


def test_a_click_answer_gives_up_on_a_permanent_failure_or_after_its_attempts(receiver):
    from notifications import tasks

    Flaky(receiver, fail=10, status=404)
    tasks.respond.apply(args=(receiver.url + "/gone", {"text": "Done"}))
    assert len(receiver.requests) == 1  # an expired response_url: no retry
    receiver.requests.clear()
    Flaky(receiver, fail=10, status=502)
    tasks.respond.apply(args=(receiver.url + "/down", {"text": "Done"}))
    assert len(receiver.requests) == tasks.RESPOND_ATTEMPTS
