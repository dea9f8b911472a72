"""A flag's page in a real browser, against the real stack (web server, Celery worker, fleet
agent): the plan that deploys first draws the deployment's canary steps and then the flag's as
one timeline, its Promote moves the deployment on, and the evaluation chart draws a line per
variant from the counts SDKs reported -- read at 1280 px and at 390 px (nothing sticks out,
axe-core finds no serious problem). Screenshots go to test-output/browser/."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from flags import actions as flag_actions
from flags import plans, sdk
from releases import actions
from releases.actors import Actor
from releases.models import Channel, Deployment, State
from tests import factories
from tests.browser.conftest import PASSWORD, off_loop, shot, sign_in
from tests.browser.test_finished import axe_problems, fits

pytestmark = pytest.mark.e2e

FAST_HEALTH = {"path": "/health", "interval": "100ms", "healthy_threshold": 2}
FIRST = {"kind": "recreate", "replicas": 1, "health": FAST_HEALTH}
CANARY = {
    "kind": "canary",
    "steps": [{"set_weight": 20}, {"pause": {}}],
    "stable_replicas": 1,
    "health": FAST_HEALTH,
}
VARIANTS = [
    {"name": "blue", "weight": 500, "weightType": "variable", "stickiness": "default"},
    {"name": "green", "weight": 500, "weightType": "variable", "stickiness": "default"},
]


def state_of(pk: int) -> str:
    return Deployment.objects.get(pk=pk).state


def deploy(actor, api, env, version, strategy):
    factories.make_release(api, version, artifact={"sample": {}}, actor=actor)
    d, _ = off_loop(
        actions.start_deployment,
        actor,
        service=api,
        environment=env,
        version=version,
        strategy=strategy,
    )
    return d


def test_the_plan_timeline_and_the_evaluation_chart_at_both_widths(stack, new_page):
    alice = factories.make_user("alice", password=PASSWORD)
    actor = Actor(user=alice, channel=Channel.API, via="setup")
    prod = factories.make_environment("prod")
    api = factories.make_service("api")
    factories.make_target(api, prod)
    first = deploy(actor, api, prod, "1.0.0", FIRST)
    stack.wait_for(lambda: state_of(first.pk) == State.SUCCEEDED, what="1.0.0 to be live")
    canary = deploy(actor, api, prod, "2.0.0", CANARY)
    stack.wait_for(lambda: state_of(canary.pk) == State.PAUSED, what="the canary's pause")

    flag = off_loop(flag_actions.create_flag, actor, "checkout", kind="string", default_value="red")
    off_loop(flag_actions.set_variants, actor, flag, prod, VARIANTS)
    off_loop(plans.start, actor, flag, prod, [{"percent": 10}, {"percent": 100}], canary)
    now = timezone.now()
    for ago in range(30, -1, -1):  # what an SDK reported, minute by minute
        blue, green = 20 + ago, 40 - ago
        toggles = {
            "checkout": {"yes": blue + green, "no": 5, "variants": {"blue": blue, "green": green}}
        }  # noqa: E501
        sdk.record(prod.pk, toggles, now - timedelta(minutes=ago))

    page = new_page()
    sign_in(page, "alice")
    page.goto("/flags/checkout/")
    timeline = page.locator("ol.plan-timeline")
    expect(timeline.locator('li[data-phase="deploy"]')).to_have_count(3)
    expect(timeline.locator('li[data-phase="release"]')).to_have_count(2)
    expect(timeline.locator('li[data-phase="deploy"][data-where="current"]')).to_contain_text(
        "pause until promoted"
    )
    chart = page.locator('[data-flag-chart="prod"]')
    for css in ("v0", "v1", "v2"):  # blue, green, off
        expect(chart.locator(f"svg path.line-{css}")).to_have_count(1)
    expect(chart.locator(".legend")).to_contain_text("blue")
    expect(chart.locator('[data-series="green"] b')).to_have_text(str(sum(range(10, 41))))
    shot(page, "flag-plan-deploying")

    page.locator('form[action$="/plan/promote/"] button').click()  # the deployment's Promote
    expect(page.locator("ul.flash li").first).to_contain_text("promote done")
    stack.wait_for(lambda: state_of(canary.pk) == State.SUCCEEDED, what="the promotion")
    off_loop(plans.tick)  # beat's sweep, now
    page.reload()
    expect(timeline.locator('li[data-phase="deploy"][data-where="done"]')).to_have_count(3)
    expect(timeline.locator('li[data-phase="release"][data-where="current"]')).to_contain_text(
        "10 %"
    )
    shot(page, "flag-plan-releasing")

    phone = new_page(width=390, height=844, storage_state=page.context.storage_state())
    phone.goto("/flags/checkout/")
    expect(phone.locator('[data-flag-chart="prod"] svg path.line-v0')).to_have_count(1)
    fits(phone, 390)
    box = phone.locator('[data-flag-chart="prod"] svg').bounding_box()
    assert box is not None and box["x"] + box["width"] <= 390
    for item in phone.locator("ol.plan-timeline li").all():
        b = item.bounding_box()
        assert b is not None and b["x"] + b["width"] <= 390, item.inner_text()
    shot(phone, "flag-plan-phone")

    signed = page.context.storage_state()  # axe-core is injected inline: past the CSP
    for width, height in ((1280, 900), (390, 844)):
        audit = new_page(width=width, height=height, bypass_csp=True, storage_state=signed)
        audit.goto("/flags/checkout/")
        expect(audit.locator('[data-flag-chart="prod"] svg path.line-v0')).to_have_count(1)
        assert axe_problems(audit) == [], width
