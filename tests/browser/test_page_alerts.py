"""The deployment page says so, prominently and in its tab's title, when the deployment the person
is watching rolls back, fails or waits for an approval (issue 15, item 9); told live, without a
reload; and the pages' favicon is served. Real stack: the local fleet, Celery worker and beat,
uvicorn, Chromium."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from releases import actions
from releases.models import Deployment, State
from tests import factories
from tests.browser import test_canary_analysis as analysed
from tests.browser.conftest import off_loop, shot, sign_in
from tests.browser.test_canary_analysis import TERMINAL, canary, start, waiting_for_promotion

pytestmark = pytest.mark.e2e

world = analysed.world  # the fixture: 1.0.0 live on the fleet, 1.1.0 released, alice

TITLES = {State.FAILED: "Failed", State.ROLLED_BACK: "Rolled back"}


def ended(pk: int) -> bool:
    return Deployment.objects.get(pk=pk).state in TERMINAL


def test_the_page_says_when_the_watched_deployment_rolls_back_fails_or_needs_approval(
    world, stack, new_page
):
    page = new_page()
    sign_in(page, "alice")
    alert = page.locator("[data-page-alert]")
    # item 7's favicon: every page names one, and it is served
    icon = page.locator("link[rel=icon]").get_attribute("href")
    served = page.request.get(icon)
    assert served.ok and served.headers["content-type"].startswith("image/svg"), served.headers

    # rolled back by someone else while the page is open
    d = start(world, canary({"set_weight": 20}, {"pause": {}}))
    page.goto(f"/deployments/{d.pk}/")
    expect(page.locator("[data-live-status]")).to_have_text("live")
    stack.wait_for(lambda: waiting_for_promotion(d.pk), timeout=120, what="the pause")
    expect(page).to_have_title(re.compile(r"^\(Waiting for you\) "), timeout=20_000)
    off_loop(actions.rollback, world["actor"], d.pk, reason="the page must say so")
    stack.wait_for(lambda: ended(d.pk), timeout=120, what="the rollback")
    assert Deployment.objects.get(pk=d.pk).state == State.ROLLED_BACK
    expect(page).to_have_title(re.compile(r"^\(Rolled back\) "), timeout=20_000)
    expect(alert).to_be_visible()
    expect(alert).to_contain_text("rolled back")
    shot(page, "alert-rolled-back")

    # a release that never becomes healthy: the rollout fails (and goes back) on its own
    factories.make_release(
        world["api"], "1.2.0", artifact={"sample": {"health": "fail"}}, actor=world["actor"]
    )
    spec = {**canary({"set_weight": 20}, {"pause": {}}), "progress_deadline": "5s"}
    sick = start(world, spec, version="1.2.0")
    page.goto(f"/deployments/{sick.pk}/")
    expect(page.locator("[data-live-status]")).to_have_text("live")
    stack.wait_for(lambda: ended(sick.pk), timeout=120, what="the failure")
    state = Deployment.objects.get(pk=sick.pk).state
    assert state in TITLES, state
    expect(page).to_have_title(re.compile(rf"^\({TITLES[state]}\) "), timeout=20_000)
    expect(alert).to_be_visible()
    expect(alert).to_contain_text(re.compile("failed|rolled back"))
    shot(page, "alert-failed")

    # the environment now asks for an approval: the new deployment waits for one
    factories.make_policy(world["dev"], required_approvals=1)
    waiting = start(world, canary({"set_weight": 20}, {"pause": {}}))
    assert Deployment.objects.get(pk=waiting.pk).state == State.AWAITING_APPROVAL
    page.goto(f"/deployments/{waiting.pk}/")
    expect(page).to_have_title(re.compile(r"^\(Needs approval\) "))
    expect(alert).to_contain_text("approval")
    # rejected elsewhere: the page stops asking
    off_loop(actions.abort, world["actor"], waiting.pk, reason="not today")
    expect(page).not_to_have_title(re.compile(r"^\(Needs approval\) "), timeout=20_000)
