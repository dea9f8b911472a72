"""A flag's page in a real browser, against the real stack: it follows a kill switch pulled
elsewhere without a reload (the WebSocket of ``flags.live``), says its buttons are stale, and
the history gains the kill."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from flags import actions
from releases.actors import Actor
from releases.models import Channel
from tests import factories
from tests.browser.conftest import PASSWORD, off_loop, shot, sign_in

pytestmark = pytest.mark.e2e


def test_a_flag_page_follows_a_kill_switch_pulled_elsewhere(stack, new_page):
    alice = factories.make_user("alice", password=PASSWORD)
    prod = factories.make_environment("prod")
    actor = Actor(user=alice, channel=Channel.API, via="setup")
    flag = off_loop(actions.create_flag, actor, "checkout")
    off_loop(actions.set_enabled, actor, flag, prod, True)
    page = new_page()
    sign_in(page, "alice")
    page.goto("/flags/checkout/")
    expect(page.locator("[data-live-status]")).to_have_text("live")
    section = page.locator('section.flag-env[data-environment="prod"]')
    expect(section.locator("[data-flag-state]")).to_have_text("on")
    expect(section.locator("[data-flag-stale]")).to_be_hidden()
    page.evaluate("window.__sameDocument = true")  # gone if the page reloads

    off_loop(actions.kill, actor, flag, prod, "checkout errors")

    expect(section.locator("[data-flag-state]")).to_have_text("killed", timeout=5_000)
    expect(section.locator("[data-flag-stale]")).to_be_visible()
    expect(page.locator("ul.history li").first).to_contain_text("flag.kill")
    assert page.evaluate("window.__sameDocument") is True
    shot(page, "flag-killed-live")
