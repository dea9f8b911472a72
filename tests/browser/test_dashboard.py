"""The dashboard in a real browser, against a real stack: sign in, start a canary from the release
page, watch the traffic split move without a reload, roll back, see 100% on the stable release and
the rollback in the audit log; a viewer sees the buttons off; the page re-syncs after the web
server restarts. Screenshots go to test-output/browser/."""

from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import expect

from integrations.local.traffic import Traffic
from releases import actions
from releases.actors import Actor
from releases.models import AuditEvent, Channel, Deployment, State, Target
from strategies.spec import KINDS
from tests import factories
from tests.browser.conftest import PASSWORD, off_loop, shot, sign_in

pytestmark = pytest.mark.e2e

HEALTH = {"path": "/health", "interval": "200ms", "healthy_threshold": 2}
CANARY = {
    "kind": "canary",
    "steps": [
        {"set_weight": 20},
        {"pause": {"duration": "4s"}},
        {"set_weight": 50},
        {"pause": {}},
    ],
    "stable_replicas": 2,
    "health": HEALTH,
}
ROLLING = {  # until the canary strategy is registered: the split moves batch by batch
    "kind": "rolling",
    "replicas": 4,
    "batch_size": 1,
    "max_surge": 1,
    "max_unavailable": 0,
    "min_ready": "2s",
    "health": HEALTH,
}
STRATEGY = CANARY if "canary" in KINDS else ROLLING
FIRST = {"kind": "rolling", "replicas": 2, "batch_size": "100%", "health": HEALTH}
TERMINAL = {s.value for s in State} - {
    "pending",
    "awaiting_approval",
    "progressing",
    "paused",
    "rolling_back",
}


@pytest.fixture
def world(stack):
    """api (team payments) in dev and prod, 1.0.0 live in dev on the fleet, 1.1.0 released;
    web in dev, not deployed; alice (superuser) and vic (viewer in dev)."""
    alice = factories.make_user("alice", password=PASSWORD)
    factories.make_persona("vic", factories.make_environment("dev"), role="viewer")
    vic = factories.make_user("vic")
    vic.set_password(PASSWORD)
    vic.save()
    api = factories.make_service("api", team="payments")
    dev, prod = factories.make_environment("dev"), factories.make_environment("prod")
    target = factories.make_target(api, dev, strategy=STRATEGY)
    factories.make_target(api, prod)
    factories.make_target(factories.make_service("web", team="storefront"), dev)
    actor = Actor(user=alice, channel=Channel.API, via="setup")
    for version in ("1.0.0", "1.1.0"):
        factories.make_release(api, version, artifact={"sample": {"latency_ms": 15}}, actor=actor)
    first, _ = off_loop(
        actions.start_deployment,
        actor,
        service=api,
        environment=dev,
        version="1.0.0",
        strategy=FIRST,
    )
    stack.wait_for(
        lambda: Deployment.objects.get(pk=first.pk).state in TERMINAL, what="1.0.0 to be live"
    )
    assert Deployment.objects.get(pk=first.pk).state == State.SUCCEEDED
    target.refresh_from_db()
    return {"alice": alice, "vic": vic, "target": target}


def canary_share(page) -> int:
    return int(page.locator('[data-w="canary"]').inner_text().rstrip("%"))


def test_a_release_manager_ships_watches_and_rolls_back(world, stack, new_page):
    board = new_page()
    sign_in(board, "alice")
    cell = board.locator('[data-cell="api/dev"]')
    expect(cell.locator("[data-cell-version]")).to_have_text("1.0.0")
    expect(board.locator("[data-live-status]")).to_have_text("live")
    board.evaluate("window.__sameDocument = true")  # gone if the page reloads
    shot(board, "board")

    # the release page, in another tab: the strategy is prefilled with the target's
    page = board.context.new_page()
    page.goto("/services/api/releases/1.1.0/?env=dev")
    prefilled = json.loads(page.locator("#strategy").input_value())
    assert prefilled["kind"] == STRATEGY["kind"]
    page.get_by_role("button", name="Deploy 1.1.0 to Dev").click()
    page.wait_for_url(re.compile(r"/deployments/\d+/$"))
    deployment = Deployment.objects.filter(release__version="1.1.0").get()
    page.evaluate("window.__sameDocument = true")

    with Traffic(Target.objects.get(pk=world["target"].pk).endpoint, rate=40, threads=2):
        # the split bar moves, live
        seen = set()

        def moved():
            seen.add(canary_share(page))
            return len(seen - {0}) >= 2

        stack.wait_for(moved, timeout=60, interval=0.1, what="the canary share to move twice")
        if STRATEGY is CANARY:
            assert {20, 50} <= seen
            expect(page.locator("[data-pause]")).to_contain_text("press Promote", timeout=20_000)
            # the board, untouched since it loaded, shows it too, in red
            expect(cell.locator(".cell-active")).to_contain_text("canary → 1.1.0")
            expect(cell).to_have_class(re.compile("cell-alert"))
            expect(cell).to_contain_text("waiting for someone to promote")
        else:
            expect(cell.locator(".cell-active")).to_contain_text("rolling → 1.1.0")
        expect(page.locator("[data-metrics-empty]")).to_be_hidden(timeout=20_000)
        expect(page.locator('[data-chart="rps"] path.line-stable')).to_have_count(1)
        assert page.evaluate("window.__sameDocument") is True
        expect(page.locator(".timeline .ev").first).to_be_visible()
        shot(page, "deployment")
        shot(board, "board-live")
        shot(new_page_at(new_page, page, 390, 844), "deployment-phone")

        # roll back: the dialog names what will happen
        page.locator('form[data-action="rollback"] button').click()
        dialog = page.locator("dialog[data-confirm-dialog]")
        expect(dialog).to_be_visible()
        expect(dialog).to_contain_text(
            "Roll back: send 100% of api in dev back to 1.0.0 and stop 1.1.0?"
        )
        dialog.locator('input[name="reason"]').fill("p99 doubled")
        dialog.get_by_role("button", name="Roll back").click()

        expect(page.locator("[data-d-state]")).to_have_text("rolled back", timeout=30_000)
        expect(page.locator('[data-w="stable"]')).to_have_text("100%")
        expect(page.locator('[data-w="canary"]')).to_have_text("0%")
        expect(page.locator('[data-seg="stable"]')).to_have_attribute("style", "width: 100%;")
        expect(page.locator(".timeline")).to_contain_text("alice asked to rollback")
        expect(page.locator('form[data-action="rollback"] button')).to_be_disabled()
        assert page.evaluate("window.__sameDocument") is True
        expect(cell).to_contain_text("last deployment (1.1.0) rolled back")
        assert board.evaluate("window.__sameDocument") is True

    # the audit log has it, with the reason
    page.goto("/audit/?action=deployment.rollback")
    audited = AuditEvent.objects.get(action="deployment.rollback")
    row = page.locator(f'[data-audit-row="{audited.pk}"]')
    expect(row).to_contain_text("alice")
    expect(row).to_contain_text(f"#{deployment.pk}")
    # and the history, with why
    page.goto("/history/?environment=dev&service=api")
    expect(page.locator(f'[data-history-row="{deployment.pk}"]')).to_contain_text(
        "rolled back by alice: p99 doubled"
    )
    shot(page, "history")
    board.reload()
    shot(board, "board-after")
    shot(new_page_at(new_page, board, 390, 844), "board-phone")


def new_page_at(new_page, page, width, height):
    """The same page in a phone-sized window (same cookies), for a screenshot."""
    phone = new_page(width=width, height=height, storage_state=page.context.storage_state())
    phone.goto(page.url)
    phone.wait_for_load_state("networkidle")
    return phone


def test_buttons_are_off_with_the_reason_of_the_state(world, stack, new_page):
    page = new_page()
    sign_in(page, "alice")
    shipped = Deployment.objects.get(release__version="1.0.0")
    page.goto(f"/deployments/{shipped.pk}/")
    pause = page.locator('form[data-action="pause"] button')
    expect(pause).to_be_disabled()
    expect(pause).to_have_attribute(
        "title",
        "Pause needs the deployment to be pending or progressing; it is succeeded.",
    )
    expect(page.locator("[data-reasons]")).to_contain_text("Resume is off")
    # the first release: nothing to roll back to
    expect(page.locator('form[data-action="rollback"] button')).to_be_disabled()
    expect(page.locator("#why-rollback")).to_contain_text("1.0.0 was the first release here")


def test_a_viewer_sees_the_buttons_off_with_the_role_they_need(world, stack, new_page):
    admin = Actor(user=world["alice"], channel=Channel.API, via="setup")
    d, _ = off_loop(
        actions.start_deployment,
        admin,
        service=world["target"].service,
        environment=world["target"].environment,
        version="1.1.0",
    )
    off_loop(actions.pause, admin, d.pk)
    page = new_page()
    sign_in(page, "vic")
    page.goto(f"/deployments/{d.pk}/")
    expect(page.locator("[data-d-state]")).to_have_text("paused")
    for name in ("promote", "promote_full", "pause", "resume", "abort", "rollback"):
        expect(page.locator(f'form[data-action="{name}"] button')).to_be_disabled()
    expect(page.locator("#why-resume")).to_contain_text("needs the deployer role on api in dev")
    # the board: only what vic may see (dev), the paused cell in red
    page.goto("/")
    expect(page.locator('[data-cell="api/dev"]')).to_have_class(re.compile("cell-alert"))
    expect(page.locator('[data-cell="api/prod"]')).to_have_count(0)


def test_the_board_is_keyboard_navigable_and_resyncs_after_the_server_restarts(
    world, stack, new_page
):
    page = new_page()
    sign_in(page, "alice")
    expect(page.locator("[data-live-status]")).to_have_text("live")
    first = page.locator('[data-cell="api/dev"]')
    first.focus()
    page.keyboard.press("ArrowRight")
    assert page.evaluate("document.activeElement.dataset.cell") == "api/prod"
    page.keyboard.press("ArrowDown")
    assert page.evaluate("document.activeElement.dataset.cell") == "web/prod"
    page.keyboard.press("Home")
    page.keyboard.press("ArrowUp")
    assert page.evaluate("document.activeElement.dataset.cell") == "api/dev"

    # the web server goes away; meanwhile a deployment starts and pauses; the page catches up
    stack.stop_web()
    expect(page.locator("[data-live-status]")).to_contain_text("offline", timeout=10_000)
    admin = Actor(user=world["alice"], channel=Channel.API, via="setup")
    d, _ = off_loop(
        actions.start_deployment,
        admin,
        service=world["target"].service,
        environment=world["target"].environment,
        version="1.1.0",
    )
    off_loop(actions.pause, admin, d.pk)
    stack.start_web()
    expect(page.locator("[data-live-status]")).to_have_text("live", timeout=40_000)
    expect(page.locator('[data-cell="api/dev"] .cell-active')).to_contain_text("paused")
    expect(first).to_have_class(re.compile("cell-alert"))
    page.keyboard.press("Enter")  # focus is still on api/dev: opens its deployment
    page.wait_for_url(f"**/deployments/{d.pk}/")
