"""The Notifications page in a real browser, against a real stack plus a notify worker: an admin
creates a Slack channel with the form (the bot token typed into a password field and never shown
back), adds a rule, sends a test message that a loopback fake of Slack's Web API receives (Slack
cannot be reached from here), sees it in the delivery log, edits the channel keeping the token,
and gets a one-time Slack link code; a viewer sees the page without the forms. Screenshots go to
test-output/browser/."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from notifications import secrets
from notifications.models import Delivery, NotificationChannel
from releases.models import AuditEvent
from switchyard import processes
from tests import factories
from tests.browser.conftest import PASSWORD, shot, sign_in
from tests.notifications.fakes import FakeSlack

pytestmark = pytest.mark.e2e


@pytest.fixture
def fake_slack(stack):
    slack = FakeSlack()
    stack.workers.env = {**stack.workers.env, "SLACK_API_URL": slack.api_url}
    stack.workers.start("notify", processes.worker_command(concurrency=1, queues="notify"))
    yield slack
    slack.stop()


def test_an_admin_creates_a_channel_sends_a_test_and_edits_it(stack, new_page, fake_slack):
    factories.make_user("alice", password=PASSWORD)
    page = new_page()
    sign_in(page, "alice")
    page.goto("/notifications/")
    page.get_by_role("link", name="New channel").click()
    page.get_by_label("Kind").select_option("slack")
    page.get_by_role("button", name="Continue").click()
    page.fill('input[name="name"]', "deploys")
    page.fill('input[name="config_channel"]', "C042")
    token_field = page.locator('input[name="secret_bot_token"]')
    expect(token_field).to_have_attribute("type", "password")
    token_field.fill(FakeSlack.TOKEN)
    shot(page, "notifications-channel-form")
    page.get_by_role("button", name="Create channel").click()

    card = page.locator("section.channel", has_text="deploys")
    expect(card).to_be_visible()
    expect(page.locator(".flash")).to_contain_text("Channel deploys created")
    assert FakeSlack.TOKEN not in page.content()
    channel = NotificationChannel.objects.get(name="deploys")
    assert secrets.resolve(channel.secrets) == {"bot_token": FakeSlack.TOKEN}

    rule_form = page.locator("form.rule-form")
    rule_form.get_by_label("Channel").select_option(str(channel.pk))
    rule_form.get_by_role("button", name="Add rule").click()
    expect(page.locator("table.rules tbody tr", has_text="deploys")).to_contain_text("every moment")

    page.locator("section.channel", has_text="deploys").get_by_role(
        "button", name="Send a test message"
    ).click()
    stack.wait_for(lambda: len(fake_slack.messages) == 1, timeout=30, what="the test in Slack")
    stack.wait_for(
        lambda: Delivery.objects.filter(trigger="test", status="sent").exists(),
        timeout=30,
        what="the test delivery recorded",
    )
    page.reload()
    log = page.locator("section.channel", has_text="deploys").locator("table.deliveries")
    expect(log.locator("tbody tr").first).to_contain_text("sent")
    shot(page, "notifications-page")

    page.locator("section.channel", has_text="deploys").get_by_role("link", name="Edit").click()
    expect(page.locator('input[name="secret_bot_token"]')).to_have_value("")  # never shown back
    assert FakeSlack.TOKEN not in page.content()
    expect(page.locator(".secret", has_text="bot_token")).to_contain_text("set: stored")
    page.fill('input[name="name"]', "releases")
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".flash")).to_contain_text("Channel releases saved")
    channel.refresh_from_db()
    assert channel.name == "releases"
    assert secrets.resolve(channel.secrets) == {"bot_token": FakeSlack.TOKEN}  # kept
    assert AuditEvent.objects.filter(action="notifications.channel_update", channel="ui").exists()

    page.get_by_role("button", name="Link my Slack account").click()
    expect(page.locator(".flash")).to_contain_text(re.compile(r"/switchyard link [A-Z0-9]{4}-"))


def test_a_viewer_reads_the_page_without_the_forms(stack, new_page):
    dev = factories.make_environment("dev")
    vic = factories.make_persona("vic", dev, role="viewer")
    vic.set_password(PASSWORD)
    vic.save()
    NotificationChannel.objects.create(name="deploys", kind="teams", config={})
    page = new_page()
    sign_in(page, "vic")
    page.goto("/notifications/")
    expect(page.locator("section.channel", has_text="deploys")).to_be_visible()
    expect(page.get_by_text("changes need an admin")).to_be_visible()
    expect(page.get_by_role("link", name="New channel")).to_have_count(0)
    expect(page.get_by_role("link", name="Edit")).to_have_count(0)
    page.goto("/notifications/channels/new/?kind=teams")
    expect(page.get_by_role("alert")).to_contain_text("You may not")
