"""The deployment page's request rate per side agrees with the traffic split: a canary on the
real local fleet (agent, router, instances), real traffic through its router at 40 requests a
second, the page in Chromium. At 20% and then at 50% the canary's share of the requests shown
is the weight within sampling error (four standard deviations of a binomial share over the
requests the page says it counted), each side's rate is its share of the same seconds, and the
page without JavaScript (server-rendered) says the same."""

from __future__ import annotations

import math
import re

import pytest
from playwright.sync_api import expect

from integrations.local.traffic import Traffic
from releases import actions
from releases.models import Deployment
from tests.browser import test_canary_analysis as analysed
from tests.browser.conftest import off_loop, shot, sign_in
from tests.browser.test_canary_analysis import canary, start, waiting_for_promotion

pytestmark = pytest.mark.e2e

world = analysed.world  # the fixture: 1.0.0 live on the fleet, 1.1.0 released, alice

SPLIT = canary({"set_weight": 20}, {"pause": {}}, {"set_weight": 50}, {"pause": {}})

# the split line once it covers at least 16 s of requests at the given canary weight
COVERS = """([weight, seconds]) => {
  const line = document.querySelector('[data-split-rates]');
  if (!line || line.hidden) return false;
  const w = line.querySelector('[data-split-weight=canary]').dataset.value;
  return w !== '' && Math.round(+w) === weight &&
    +line.querySelector('[data-split-seconds]').textContent >= seconds;
}"""


def wait_for_split(page, weight: int) -> None:
    """Until the split line covers 16 s at ``weight`` (a bound for a loaded machine, not a
    timing check); on failure, what the page shows and the samples it holds."""
    try:
        page.wait_for_function(COVERS, arg=[weight, 16], timeout=120_000)
    except Exception as exc:
        line = page.locator("[data-split-rates]")
        seen = line.inner_text() if line.count() else "no split line"
        raise AssertionError(f"{weight}%: the page shows {seen!r}") from exc


def shown_split(page) -> dict:
    line = page.locator("[data-split-rates]")
    rps = page.locator('[data-chart="rps"]')

    def rate(side):
        text = rps.locator(f"[data-latest={side}]").inner_text()
        return float(re.fullmatch(r"([\d.]+)/s", text).group(1))

    return {
        "text": line.inner_text(),
        "requests": int(line.locator("[data-split-requests]").inner_text()),
        "seconds": float(line.locator("[data-split-seconds]").inner_text()),
        "share": float(line.locator("[data-split-share=canary]").get_attribute("data-value")),
        "stable_share": float(
            line.locator("[data-split-share=stable]").get_attribute("data-value")
        ),
        "weight": float(line.locator("[data-split-weight=canary]").get_attribute("data-value")),
        "stable_rps": rate("stable"),
        "canary_rps": rate("canary"),
    }


def assert_agrees(shown: dict, weight: int) -> None:
    p, n = weight / 100, shown["requests"]
    assert n >= 100, shown  # enough requests for the share to mean something
    assert round(shown["weight"]) == weight, shown
    tolerance = 4 * math.sqrt(p * (1 - p) / n)  # a binomial share: 4 standard deviations
    assert abs(shown["share"] - p) <= tolerance, (shown, tolerance)
    assert abs(shown["share"] + shown["stable_share"] - 1) < 0.01, shown  # no third slot here
    # the rates are over the same seconds: their ratio is the share (to their rounding)
    total = shown["stable_rps"] + shown["canary_rps"]
    assert abs(shown["canary_rps"] / total - shown["share"]) <= 0.1 / total + 0.01, shown


def test_the_request_rate_per_side_agrees_with_the_split(world, stack, new_page):
    page = new_page()
    sign_in(page, "alice")
    endpoint = world["target"].endpoint
    with Traffic(endpoint, rate=40, threads=2) as traffic:
        d = start(world, SPLIT)
        stack.wait_for(lambda: waiting_for_promotion(d.pk), timeout=120, what="20%")
        page.goto(f"/deployments/{d.pk}/")
        expect(page.locator("[data-live-status]")).to_have_text("live")
        wait_for_split(page, 20)
        at_20 = shown_split(page)
        assert_agrees(at_20, 20)
        shot(page, "request-split-20")

        # the page without its script (server-rendered) reads the same split
        static = new_page(java_script_enabled=False, storage_state=page.context.storage_state())
        static.goto(page.url)
        served = shown_split(static)
        assert_agrees(served, 20)

        # at 50% the share follows the new split, not a blend of the two
        before = len(traffic.snapshot())
        off_loop(actions.promote, world["actor"], d.pk)
        stack.wait_for(
            lambda: waiting_for_promotion(d.pk) and Deployment.objects.get(pk=d.pk).step_index == 3,
            timeout=120,
            what="50%",
        )
        wait_for_split(page, 50)
        at_50 = shown_split(page)
        assert_agrees(at_50, 50)
        answered = traffic.snapshot()[before:]
    # what the client saw agrees too (the router splits as told; the page is not the only judge)
    canary_share = sum(1 for s in answered if s.version == "1.1.0") / len(answered)
    assert abs(canary_share - 0.5) <= 4 * math.sqrt(0.25 / len(answered)), canary_share
