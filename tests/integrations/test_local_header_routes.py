"""Header routes on the local router (Argo Rollouts' setHeaderRoute): a request matching every
header match of a route goes to the canary slot whatever the weights; the routing is checked
when it is set. The last test runs a real fleet agent and real instances over HTTP."""

from __future__ import annotations

import pytest
from multidict import CIMultiDict

from integrations.base import Routing
from integrations.local.targeting import Rules
from integrations.local.validation import Invalid, routing
from tests.integrations.fleet_helpers import Control, fire, fire_each

BETA = {"name": "beta", "match": [{"header": "X-Beta", "value": {"exact": "yes"}}]}
MOBILE = {
    "name": "mobile",
    "match": [
        {"header": "User-Agent", "value": {"regex": ".*(Android|iPhone).*"}},
        {"header": "X-App", "value": {"prefix": "shop/"}},
    ],
}


def ask(routes, **headers) -> str | None:
    rules = Rules(
        Routing(
            {"blue": 100, "green": 0},
            stable_slot="blue",
            canary_slot="green",
            header_routes=tuple(routes),
        )
    )
    names = {name.replace("_", "-"): value for name, value in headers.items()}
    return rules.preferred_slot(CIMultiDict(names), None)


def test_a_request_matching_a_header_route_asks_for_the_canary():
    assert ask([BETA], X_Beta="yes") == "green"
    assert ask([BETA], x_beta="yes") == "green"  # header names are case-insensitive
    assert ask([BETA], X_Beta="Yes") is None  # exact is exact
    assert ask([BETA], X_Beta="yes please") is None
    assert ask([BETA]) is None


def test_every_match_of_a_route_must_hold_and_any_route_may():
    phone = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0)"
    assert ask([MOBILE], User_Agent=phone, X_App="shop/2.1") == "green"
    assert ask([MOBILE], User_Agent=phone) is None
    assert ask([MOBILE], User_Agent="curl/8", X_App="shop/2.1") is None
    assert ask([MOBILE, BETA], User_Agent="curl/8", X_Beta="yes") == "green"


def test_a_routing_with_header_routes_is_checked_naming_each_bad_field():
    good = routing(
        {
            "weights": {"blue": 100},
            "stable_slot": "blue",
            "canary_slot": "green",
            "header_routes": [BETA],
        }
    )
    assert good.header_routes == (BETA,)
    with pytest.raises(Invalid) as caught:
        routing(
            {
                "weights": {"blue": 100},
                "header_routes": [
                    {"name": "x", "match": [{"header": "bad header", "value": {"glob": "*"}}]},
                    {"name": "y", "match": [{"header": "X-A", "value": {"regex": "("}}]},
                ],
            }
        )
    paths = [path for path, _ in caught.value.errors]
    assert paths == [
        "header_routes[0].match[0].header",
        "header_routes[0].match[0].value",
        "header_routes[1].match[0].value.regex",
        "stable_slot",
        "canary_slot",
    ]


@pytest.fixture(scope="module")
def control(tmp_path_factory):
    from integrations.local.process import start_agent

    with start_agent(log_path=str(tmp_path_factory.mktemp("fleet") / "agent.log")) as agent:
        control = Control(agent)
        yield control
        control.close()


@pytest.mark.timeout(90)
def test_the_router_sends_matching_requests_to_the_canary_at_weight_0(control):
    endpoint = control.create_target("hr.shop")
    control.ensure("hr.shop", "blue", "1.0", 1)
    control.ensure("hr.shop", "green", "2.0", 1)
    control.wait_ready("hr.shop", "blue", 1)
    control.wait_ready("hr.shop", "green", 1)
    control.set_routing(
        "hr.shop",
        {"blue": 100, "green": 0},
        stable_slot="blue",
        canary_slot="green",
        header_routes=[BETA],
    )
    url = endpoint + "/"

    beta = fire_each(url, [{"X-Beta": "yes"}] * 40)
    others = fire_each(url, [{"X-Beta": "no"}] * 20) + fire(url, 20)

    assert {(a.status, a.version) for a in beta} == {(200, "2.0")}
    assert {(a.status, a.version) for a in others} == {(200, "1.0")}
    assert control.status("hr.shop")["routing"]["header_routes"] == [BETA]
