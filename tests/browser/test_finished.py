"""The rest of the dashboard (issue 15) in a real browser against a real stack: after a canary ships
the split's legend agrees with the Instances card and no idle Approve/Reject is shown; a rollback
is marked in the lists with what it undoes; the navigation finds every page by role; the lists
read at 390 px; axe-core finds no serious or critical violation on the main pages; the release
page's strategy builder makes a canary without writing JSON and checks it live; redeploying the
version already live must be asked for. Screenshots (1280 and 390 px) go to test-output/browser/.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from releases import actions
from releases.actors import Actor
from releases.governance.tokens import create_token
from releases.models import Channel, Deployment, State
from releases.models.analysis import AnalysisTemplate
from strategies.analysis.template import normalise
from tests import factories
from tests.browser.conftest import PASSWORD, off_loop, shot, sign_in

pytestmark = pytest.mark.e2e

AXE = Path(__file__).resolve().parent / "vendor" / "axe-core" / "axe.min.js"
HEALTH = {"path": "/health", "interval": "200ms", "healthy_threshold": 2}
FIRST = {"kind": "rolling", "replicas": 2, "batch_size": "100%", "health": HEALTH}
CANARY = {
    "kind": "canary",
    "steps": [{"set_weight": 20}, {"pause": {}}],
    "stable_replicas": 2,
    "health": HEALTH,
}
TERMINAL = {State.SUCCEEDED, State.FAILED, State.ROLLED_BACK, State.ABORTED, State.REJECTED}
PHONE = {"width": 390, "height": 844}


@pytest.fixture
def world(stack):
    """api in dev with 1.0.0 live on the fleet and 1.1.0 released; alice (superuser, staff), vic
    (a viewer in dev); an analysis template ``errors``."""
    alice = factories.make_user("alice", password=PASSWORD)
    dev = factories.make_environment("dev")
    factories.make_persona("vic", dev, role="viewer")
    vic = factories.make_user("vic")
    vic.set_password(PASSWORD)
    vic.save()
    api = factories.make_service("api", team="payments")
    target = factories.make_target(api, dev, strategy=CANARY)
    AnalysisTemplate.objects.create(
        name="errors",
        spec=normalise({"metrics": [{"name": "errors", "query": "error_rate", "count": 3}]}),
    )
    actor = Actor(user=alice, channel=Channel.API, via="setup")
    for version in ("1.0.0", "1.1.0"):
        factories.make_release(api, version, artifact={"sample": {}}, actor=actor)
    first, _ = off_loop(
        actions.start_deployment,
        actor,
        service=api,
        environment=dev,
        version="1.0.0",
        strategy=FIRST,
    )
    stack.wait_for(lambda: state_of(first.pk) in TERMINAL, what="1.0.0 to be live")
    assert state_of(first.pk) == State.SUCCEEDED
    return {"alice": alice, "actor": actor, "api": api, "dev": dev, "target": target}


def state_of(pk: int) -> str:
    return Deployment.objects.get(pk=pk).state


def phone_of(new_page, page):
    return new_page(**PHONE, storage_state=page.context.storage_state())


def fits(page, width: int) -> None:
    """Nothing sticks out of the window: the page does not scroll sideways, no cell is cut."""
    assert page.evaluate("document.documentElement.scrollWidth") <= width, page.url
    cut = page.evaluate(
        """w => [...document.querySelectorAll('main td, main th')]
              .filter(c => c.offsetParent && !c.closest('thead'))  // stacked: headings are
              .filter(c => c.getBoundingClientRect().right > w + 0.5)  // for screen readers
              .map(c => c.textContent.trim().slice(0, 40))""",
        width,
    )
    assert not cut, (page.url, cut)


def axe_problems(page) -> list[str]:
    """Serious and critical axe-core violations on the page as it is now."""
    page.add_script_tag(path=str(AXE))
    found = page.evaluate(
        """async () => {
            const r = await axe.run(document, {resultTypes: ['violations']});
            return r.violations.filter(v => ['serious', 'critical'].includes(v.impact))
              .map(v => v.id + ': ' + v.nodes.slice(0, 3)
                .map(n => n.target.join(' ') + ' (' + n.failureSummary + ')').join('; '));
        }"""
    )
    return found


def test_a_shipped_canary_reads_right_is_marked_when_undone_and_every_page_passes(
    world, stack, new_page
):
    page = new_page()
    sign_in(page, "alice")
    d, _ = off_loop(
        actions.start_deployment,
        world["actor"],
        service=world["api"],
        environment=world["dev"],
        version="1.1.0",
    )
    page.goto(f"/deployments/{d.pk}/")
    expect(page.locator("[data-pause]")).to_contain_text("press Promote", timeout=45_000)
    # no gate waits: no Approve / Reject at all (not a pair of dead buttons)
    expect(page.locator('form[data-action="approve"]')).to_have_count(0)
    expect(page.locator('form[data-action="reject"]')).to_have_count(0)
    expect(page.locator("[data-reasons]")).not_to_contain_text("Approve")
    expect(page.locator('.split-legend [data-called="canary"]')).to_have_text("canary")
    expect(page.locator('#metrics-h [data-called="canary"]')).to_have_text("canary")

    off_loop(actions.promote, world["actor"], d.pk, full=True)
    expect(page.locator("[data-d-state]")).to_have_text("succeeded", timeout=30_000)
    d.refresh_from_db()

    def legend_agrees_with_instances(p):
        # the slot the Instances card calls stable is the one the legend calls stable, at 100%
        stable_row = p.locator("[data-slots] tr", has_text="stable").first
        expect(stable_row).to_contain_text(d.canary_slot)
        expect(p.locator('.split-legend [data-called="canary"]')).to_have_text("stable")
        expect(p.locator('.split-legend [data-called="stable"]')).to_have_text("previous")
        # the request charts call the sides the same (they said "canary" after it shipped)
        expect(p.locator('#metrics-h [data-called="canary"]')).to_have_text("stable")
        expect(p.locator('#metrics-h [data-called="stable"]')).to_have_text("previous")
        legends = p.locator('.metrics .legend [data-called="canary"]')
        expect(legends).to_have_text(["stable"] * legends.count())
        expect(p.locator('[data-w="canary"]')).to_have_text("100%")
        legend = p.locator(".split-legend").inner_text()
        assert re.search(rf"stable {d.canary_slot} 1\.1\.0 · 100%", legend), legend
        assert f"stable {d.stable_slot}" not in legend, legend

    legend_agrees_with_instances(page)  # told live
    # the charts' window is the deployment's, marked where the weight changed
    rps = page.locator('[data-chart="rps"]')
    expect(rps.locator('.mark[data-mark="20%"]').first).to_be_attached()
    axis = rps.locator("text.axis").all_text_contents()  # clock times, not "-15 min"
    assert any(re.fullmatch(r"\d\d:\d\d:\d\d", t) for t in axis), axis
    assert not any("min" in t for t in axis), axis
    page.reload()
    legend_agrees_with_instances(page)  # and as the server draws it
    expect(page.locator('form[data-action="approve"]')).to_have_count(0)
    shot(page, "shipped")

    # roll it back: the lists mark the rollback and link what it undoes
    back = off_loop(actions.rollback, world["actor"], d.pk, reason="checking the lists")
    stack.wait_for(lambda: state_of(back.pk) in TERMINAL, what="the rollback")
    page.goto("/deployments/")
    row = page.locator(f'[data-deployment-row="{back.pk}"]')
    expect(row.locator("[data-rollback-of]")).to_have_text("rollback")
    expect(row).to_contain_text(f"undoes #{d.pk}")
    expect(page.locator(f'[data-deployment-row="{d.pk}"] [data-rollback-of]')).to_have_count(0)
    page.goto("/history/")
    expect(page.locator(f'[data-history-row="{back.pk}"]')).to_contain_text(f"undoes #{d.pk}")
    page.goto("/")
    expect(page.locator(f'[data-recent] [data-deployment-row="{back.pk}"]')).to_contain_text(
        f"undoes #{d.pk}"
    )

    # finding things: every page in the navigation; Admin for staff only
    nav = page.get_by_role("navigation", name="Main")
    for name in (
        "Board",
        "Deployments",
        "History",
        "Audit",
        "Flags",
        "Notifications",
        "API tokens",
        "Admin",
    ):
        expect(nav.get_by_role("link", name=name, exact=True)).to_be_visible()
    nav.get_by_role("link", name="API tokens").click()
    page.wait_for_url("**/tokens/")
    expect(nav.get_by_role("link", name="API tokens")).to_have_attribute("aria-current", "page")
    href = page.locator('link[rel="icon"]').get_attribute("href")
    assert page.request.get(href).ok, href
    off_loop(create_token, world["alice"], "ci")  # a row for the tokens page below

    viewer = new_page()
    sign_in(viewer, "vic")
    expect(
        viewer.get_by_role("navigation", name="Main").get_by_role("link", name="Admin")
    ).to_have_count(0)
    expect(viewer.get_by_role("link", name="API tokens")).to_be_visible()

    # every main page: fits a phone, no serious accessibility problem, a screenshot at each width
    pages = {
        "board": "/",
        "deployment": f"/deployments/{d.pk}/",
        "release": "/services/api/releases/1.1.0/",
        "deployments": "/deployments/",
        "history": "/history/",
        "audit": "/audit/",
        "tokens": "/tokens/",
    }
    # axe is injected as a script: these two windows let it past the pages' CSP (script-src 'self')
    signed = page.context.storage_state()
    page = new_page(bypass_csp=True, storage_state=signed)
    phone = new_page(**PHONE, bypass_csp=True, storage_state=signed)
    problems = {}
    for name, url in pages.items():
        page.goto(url)
        page.wait_for_load_state("networkidle")
        shot(page, f"page-{name}")
        problems[name] = axe_problems(page)
        phone.goto(url)
        phone.wait_for_load_state("networkidle")
        fits(phone, PHONE["width"])
        shot(phone, f"page-{name}-phone")
        problems[name + " (390 px)"] = axe_problems(phone)
    assert not any(problems.values()), {k: v for k, v in problems.items() if v}


def test_the_strategy_builder_makes_a_canary_and_redeploying_must_be_asked_for(
    world, stack, new_page
):
    page = new_page()
    sign_in(page, "alice")
    page.goto("/services/api/releases/1.1.0/?env=dev")
    builder = page.locator("[data-builder]")
    expect(builder).to_be_visible()
    expect(page.locator("[data-b-kind]")).to_have_value("canary")  # the target's, read from JSON
    steps = page.locator("[data-b-steps] li")
    expect(steps).to_have_count(2)
    check = page.locator("[data-b-check]")
    expect(check).to_contain_text("Valid: a canary deployment")
    # a field changed in the form lands in the JSON; keys the form has no field for stay
    page.get_by_label("Stable replicas").fill("3")
    expect(check.locator("[data-b-planned] li").first).to_contain_text("3 of the old one")
    edited = json.loads(page.locator("#strategy").input_value())
    assert edited["stable_replicas"] == 3 and edited["health"]["path"] == "/health", edited

    # start from the example: a ladder with the analysis template picked from the list
    page.get_by_role("button", name="Start from the example").click()
    expect(steps).to_have_count(5)
    expect(steps.nth(2).locator("[data-b-step-value]")).to_have_value("errors")
    # add a step, make it a 150% weight: the validator's message, live, on that row
    page.get_by_role("button", name="Add a step").click()
    expect(steps).to_have_count(6)
    last = steps.nth(5)
    last.locator("[data-b-step-type]").select_option("set_weight")
    last.locator("[data-b-step-value]").fill("150")
    expect(check).to_contain_text("steps[5].set_weight")
    expect(last).to_have_class(re.compile("b-invalid"))
    expect(page.locator("#strategy")).to_have_attribute("aria-invalid", "true")
    last.locator("[data-b-step-value]").fill("80")
    expect(check).to_contain_text("Valid")
    expect(check.locator("[data-b-planned] li").nth(5)).to_contain_text("set weight 80%")
    # reorder: move it up above the last pause; remove the first pause
    page.get_by_role("button", name="Move step 6 up").click()
    expect(steps.nth(4).locator("[data-b-step-value]")).to_have_value("80")
    page.get_by_role("button", name="Remove step 2").click()
    expect(steps).to_have_count(5)
    built = json.loads(page.locator("#strategy").input_value())
    assert built["kind"] == "canary" and built["stable_replicas"] == 2, built
    assert built["steps"] == [
        {"set_weight": 10},
        {"analysis": {"template": "errors"}},
        {"set_weight": 50},
        {"set_weight": 80},
        {"pause": {}},
    ], built["steps"]
    shot(page, "builder")
    phone = phone_of(new_page, page)
    phone.goto(page.url)
    expect(phone.locator("[data-b-steps] li")).to_have_count(2)
    fits(phone, PHONE["width"])
    shot(phone, "builder-phone")

    # the JSON stays available: typed in, the form follows; another kind's fields appear
    page.locator("#strategy").fill(json.dumps({"kind": "rolling", "replicas": 3, "batch_size": 1}))
    expect(page.locator("[data-b-kind]")).to_have_value("rolling")
    expect(page.get_by_label("Batch size")).to_have_value("1")
    expect(page.locator("[data-b-steps-wrap]")).to_be_hidden()
    expect(check).to_contain_text("Valid: a rolling deployment in 3 steps")
    page.locator("[data-b-kind]").select_option("canary")  # back to a canary: its example
    expect(steps).to_have_count(5)
    page.locator("#reason").fill("built in the form")
    page.get_by_role("button", name="Deploy 1.1.0 to Dev").click()
    page.wait_for_url(re.compile(r"/deployments/\d+/$"))
    d = Deployment.objects.get(release__version="1.1.0")
    assert d.strategy_kind == "canary" and d.reason == "built in the form"
    assert [s["analysis"]["template"] for s in d.strategy["steps"] if "analysis" in s] == ["errors"]
    off_loop(actions.abort, world["actor"], d.pk, reason="done looking")
    stack.wait_for(lambda: state_of(d.pk) in TERMINAL, what="the abort")

    # 1.0.0 is live in dev: the form says so and asks for "redeploy"
    page.goto("/services/api/releases/1.0.0/?env=dev")
    expect(page.locator("[data-already-live]")).to_contain_text("already live in Dev")
    button = page.get_by_role("button", name="Redeploy 1.0.0 to Dev")
    button.click()  # the box is not ticked: the browser refuses to send the form
    assert page.url.endswith("?env=dev")
    assert page.evaluate("document.querySelector('[data-redeploy]').validity.valueMissing")
    # without the box (a form without the browser's check): refused, saying why
    answer = page.request.post(
        "/services/api/releases/1.0.0/deploy/",
        form={
            "environment": "dev",
            "strategy": "",
            "csrfmiddlewaretoken": page.locator("[name=csrfmiddlewaretoken]").first.input_value(),
        },
    )
    assert answer.status == 409 and "already live in dev" in answer.text()
    page.get_by_label("Redeploy 1.0.0 to Dev anyway").check()
    button.click()
    page.wait_for_url(re.compile(r"/deployments/\d+/$"))
    again = Deployment.objects.order_by("-id").first()
    assert again.pk > d.pk and again.release.version == "1.0.0", again
    assert page.url.endswith(f"/deployments/{again.pk}/")
