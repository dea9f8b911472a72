"""A canary whose analysis runs to a verdict, watched in a real browser at 1280 px and at 390 px
(a phone), then rolled back: the analysis table shows numbers a person reads, the page fits its
window, the words match what happened (step numbers, pauses, slot roles after a rollback), and the
live connection never drops meanwhile. Screenshots go to test-output/browser/."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from integrations.local.traffic import Traffic
from releases import actions
from releases.actors import Actor
from releases.live.presenters import pause_dict
from releases.models import Channel, Deployment, State, Target
from releases.models.analysis import AnalysisTemplate
from strategies.analysis.template import normalise
from tests import factories
from tests.browser.conftest import PASSWORD, off_loop, shot, sign_in

pytestmark = pytest.mark.e2e

HEALTH = {"path": "/health", "interval": "200ms", "healthy_threshold": 2}
FIRST = {"kind": "rolling", "replicas": 2, "batch_size": "100%", "health": HEALTH}
TEMPLATE = {
    "metrics": [
        {
            "name": "errors",
            "query": "error_rate",
            "interval": "500ms",
            "count": 6,
            "min_samples": 20,
            # the judge passes only within a margin (docs/analysis.md): 10 points is shown after
            # a few seconds of clean traffic, and an undecided look gives up after 10 s
            "margin": 0.1,
            "max_duration": "10s",
        },
        {
            "name": "latency",
            "query": "latency",
            "test": "mann_whitney",
            "unit": "ms",
            "interval": "500ms",
            "count": 6,
            "min_samples": 5,
        },
    ]
}


def canary(*steps) -> dict:
    return {
        "kind": "canary",
        "steps": list(steps),
        "stable_replicas": 2,
        "progress_deadline": "60s",
        "health": HEALTH,
    }


ANALYSED = canary(
    {"set_weight": 20},
    {"analysis": {"template": "checks"}},
    {"set_weight": 50},
    {"pause": {}},
)
TERMINAL = {State.SUCCEEDED, State.FAILED, State.ROLLED_BACK, State.ABORTED}

# Every text the live indicator and the summary's message show, from the first script on.
WATCH_LIVE = """
window.__liveSeen = [];
window.__messages = [];
new MutationObserver(() => {
  const el = document.querySelector('[data-live-status]');
  if (el) window.__liveSeen.push(el.textContent.trim());
  const message = document.querySelector('[data-d-message]');
  if (message) window.__messages.push(message.textContent.trim());
}).observe(document, {subtree: true, childList: true, characterData: true});
"""


@pytest.fixture
def world(stack):
    """api in dev, 1.0.0 live on the fleet, 1.1.0 released; the template ``checks`` (errors by a
    sequential test, latency by Mann-Whitney); alice is a superuser."""
    alice = factories.make_user("alice", password=PASSWORD)
    api = factories.make_service("api", team="payments")
    dev = factories.make_environment("dev")
    target = factories.make_target(api, dev, strategy=ANALYSED)
    AnalysisTemplate.objects.create(name="checks", spec=normalise(TEMPLATE))
    actor = Actor(user=alice, channel=Channel.API, via="setup")
    for version in ("1.0.0", "1.1.0"):
        factories.make_release(api, version, artifact={"sample": {"latency_ms": 5}}, actor=actor)
    first, _ = off_loop(
        actions.start_deployment,
        actor,
        service=api,
        environment=dev,
        version="1.0.0",
        strategy=FIRST,
    )
    stack.wait_for(lambda: Deployment.objects.get(pk=first.pk).state in TERMINAL, what="1.0.0")
    target.refresh_from_db()
    return {"alice": alice, "actor": actor, "target": target, "api": api, "dev": dev}


def start(world, strategy, version="1.1.0") -> Deployment:
    d, _ = off_loop(
        actions.start_deployment,
        world["actor"],
        service=world["api"],
        environment=world["dev"],
        version=version,
        strategy=strategy,
    )
    return d


def page_width(page) -> int:
    return page.evaluate("document.documentElement.scrollWidth")


def test_an_analysed_canary_reads_right_at_both_widths_and_after_a_rollback(world, stack, new_page):
    page = new_page()
    page.add_init_script(WATCH_LIVE)
    sign_in(page, "alice")
    endpoint = Target.objects.get(pk=world["target"].pk).endpoint
    with Traffic(endpoint, rate=40, threads=2):
        d = start(world, ANALYSED)
        page.goto(f"/deployments/{d.pk}/")
        expect(page.locator("[data-live-status]")).to_have_text("live")
        # the analysis runs to its verdict and the canary moves on to wait at the last step
        expect(page.locator("[data-pause]")).to_contain_text("press Promote", timeout=45_000)
    run = page.locator("[data-analysis] .run").first
    expect(run).to_contain_text("pass")
    table = run.locator("table")
    shot(page, "analysis")

    # 1. numbers, not "[object Object]" nor a Python dict
    text = table.inner_text()
    assert "[object Object]" not in text and "{" not in text, text
    errors = table.locator('[data-metric="errors"]')
    expect(errors.locator("[data-side=baseline]")).to_contain_text(re.compile(r"\d+ requests"))
    expect(errors.locator("[data-side=canary]")).to_contain_text(re.compile(r"\d+ errors"))
    expect(errors.locator("[data-evidence]")).to_contain_text(re.compile(r"evidence .* < 200"))
    latency = table.locator('[data-metric="latency"]')
    expect(latency.locator("[data-side=canary]")).to_contain_text(re.compile(r"p95 [\d.]+ ms"))
    expect(latency.locator("[data-shift]")).to_contain_text(re.compile(r"shift .* ms"))
    expect(latency.locator("[data-shift]")).to_contain_text("98% CI")
    # 6. a chart per metric: each measurement, baseline against canary, and the errors' limit
    errors_chart = page.locator('[data-analysis-chart="errors"]')
    expect(errors_chart.locator("path.line-canary")).to_have_count(1)
    expect(errors_chart.locator("path.line-stable")).to_have_count(1)
    expect(errors_chart.locator("path.line-limit")).to_have_count(1)  # baseline + margin
    expect(page.locator('[data-analysis-chart="latency"] path.line-canary')).to_have_count(1)
    assert int(errors_chart.get_attribute("data-measurements")) >= 2
    # the same table, drawn by the page's script from a live message
    page.reload()
    page.evaluate("window.__sameDocument = true")
    server_text = page.locator("[data-analysis]").inner_text()
    page.evaluate("window.renderAnalysisForTest && window.renderAnalysisForTest()")
    assert page.locator("[data-analysis]").inner_text() == server_text

    # 2. the page fits its window, at 1280 px and on a phone
    assert page_width(page) <= 1280
    steps = page.locator("[data-steps] li").first
    assert steps.bounding_box()["width"] > 200  # the Steps card is not one word per line
    phone = new_page(width=390, height=844, storage_state=page.context.storage_state())
    phone.goto(page.url)
    expect(phone.locator("[data-analysis] .run").first).to_be_visible()
    assert page_width(phone) <= 390
    for cell in phone.locator("[data-slots] td, [data-analysis] td").all():  # no cut columns
        box = cell.bounding_box()
        assert box is None or box["x"] + box["width"] <= 390, cell.inner_text()
    shot(phone, "analysis-phone")

    # 4. words: the event and the page number the steps alike
    expect(page.locator(".timeline")).to_contain_text("step 2")
    assert "step-1" not in page.locator(".timeline").inner_text()

    # the slot called blue is drawn blue, whatever its role
    blue = "stable" if d.stable_slot == "blue" else "canary"
    colour = page.locator(f'[data-seg="{blue}"]').evaluate(
        "e => getComputedStyle(e).backgroundColor"
    )
    assert colour == "rgb(47, 111, 214)", colour

    # shipped, then rolled back: the restored release is the stable one, the retired one no role
    off_loop(actions.promote, world["actor"], d.pk, full=True)
    expect(page.locator("[data-d-state]")).to_have_text("succeeded", timeout=30_000)
    back = off_loop(actions.rollback, world["actor"], d.pk, reason="checking the words")
    assert back.pk != d.pk
    page.goto(f"/deployments/{back.pk}/")
    expect(page.locator("[data-d-state]")).to_have_text("succeeded", timeout=30_000)
    restored = page.locator("[data-slots] tr", has_text="1.0.0")
    expect(restored).to_contain_text("stable")
    retired = page.locator("[data-slots] tr", has_text="1.1.0")
    if retired.count():
        expect(retired).not_to_contain_text("stable")
        expect(retired).not_to_contain_text("canary")
    # the retired instances stop: the page and the API stop saying "draining"
    expect(page.locator("[data-slots]")).not_to_contain_text("draining", timeout=30_000)
    answer = page.request.get("/api/v1/services/api/targets/dev")
    assert answer.ok, answer.text()
    slots = answer.json()["slots"]
    assert not any(i["state"] == "draining" for s in slots.values() for i in s["instances"]), slots
    assert {s["role"] for s in slots.values() if s["version"] == "1.0.0"} == {"stable"}, slots
    shot(page, "rolled-back")

    # 3. the live connection held throughout
    seen = page.evaluate("window.__liveSeen")
    assert not [s for s in seen if "offline" in s], seen


# errors alone: with too little traffic it can only be inconclusive (a latency comparison on a few
# requests could fail on a loaded machine, and the test would wait for a pause that never comes)
QUIET = {"metrics": [TEMPLATE["metrics"][0]]}


def waiting_for_promotion(pk: int) -> bool:
    """The deployment holds for a person to press Promote; fails at once if it ended instead."""
    d = Deployment.objects.get(pk=pk)
    assert d.state not in TERMINAL, (d.state, d.message, d.failure_reason)
    return (pause_dict(d) or {}).get("kind") == "promotion"


def test_an_inconclusive_analysis_says_why_it_waits_not_an_operator(world, stack, new_page):
    AnalysisTemplate.objects.create(name="quiet", spec=normalise(QUIET))
    page = new_page()
    page.add_init_script(WATCH_LIVE)
    sign_in(page, "alice")
    endpoint = Target.objects.get(pk=world["target"].pk).endpoint
    spec = canary(
        {"set_weight": 20},
        {"pause": {"duration": "3s"}},
        {"analysis": {"template": "quiet"}},
        {"set_weight": 50},
    )
    with Traffic(endpoint, rate=2, threads=1):  # too little traffic to judge
        d = start(world, spec)
        page.goto(f"/deployments/{d.pk}/")
        note = page.locator("[data-pause]")
        # wait on the deployment's state, however long a loaded machine takes to get there
        stack.wait_for(
            lambda: waiting_for_promotion(d.pk), timeout=180, interval=0.5, what="the promotion"
        )
    # then the page, told live, says so within a few seconds
    expect(note).to_contain_text("press Promote", timeout=20_000)
    expect(note).not_to_contain_text("operator")
    # 9. the page and its tab say it waits for the person watching
    expect(page.locator("[data-page-alert]")).to_contain_text("press Promote")
    expect(page).to_have_title(re.compile(r"^\(Waiting for you\) "))
    expect(note.locator("[data-pause-why]")).to_contain_text("analysis inconclusive (step 3)")
    shot(page, "inconclusive")
    assert "step-2" not in page.locator(".timeline").inner_text()
    expect(page.locator(".timeline")).to_contain_text("(step 3)")
    # the same after a reload (server-rendered)
    page.reload()
    expect(page.locator("[data-pause]")).to_contain_text("analysis inconclusive (step 3)")
    expect(page).to_have_title(re.compile(r"^\(Waiting for you\) "))
    # a timed pause counted in whole seconds, as the countdown does
    messages = page.evaluate("window.__messages")
    assert not [m for m in messages if re.search(r"\d\.\d+s more", m)], messages
