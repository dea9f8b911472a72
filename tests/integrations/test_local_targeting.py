"""Targeting without a server: which slot a request asks for, and how the routing is checked."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from multidict import CIMultiDict

from integrations.base import Routing
from integrations.local.balancing import Balancer
from integrations.local.targeting import Rules, sticky_point
from integrations.local.validation import Invalid, routing
from tests.integrations.test_local_parts import Inst, pools


def rules(weights=None, **rest) -> Rules:
    rest.setdefault("stable_slot", "blue")
    rest.setdefault("canary_slot", "green")
    return Rules(Routing(weights if weights is not None else {"blue": 50, "green": 50}, **rest))


def ask(rules: Rules, cookies=None, **headers) -> str | None:
    names = {name.replace("_", "-"): value for name, value in headers.items()}
    return rules.preferred_slot(CIMultiDict(names), cookies)


def test_always_and_never_in_the_header_or_cookie_pick_canary_and_stable():
    r = rules(header="X-Canary", cookie="canary")

    assert ask(r, X_Canary="always") == "green"
    assert ask(r, x_canary=" Never") == "blue"
    assert ask(r, {"canary": "ALWAYS"}) == "green"
    assert ask(r, {"canary": "never"}) == "blue"
    assert ask(r, {"canary": "never"}, X_Canary="always") == "green"  # the header first
    assert ask(r, {"canary": "never"}, X_Canary="perhaps") == "blue"
    assert ask(r, X_Canary="perhaps") is None
    assert ask(r) is None


def test_nothing_is_asked_for_without_targeting_rules():
    assert ask(rules(), {"canary": "always"}, X_Canary="always", X_User_Id="u1") is None
    assert rules().uses_cookies is False
    assert rules(cookie="canary").uses_cookies is True
    assert rules(sticky_key="cookie:uid").uses_cookies is True


def test_a_sticky_key_places_a_user_by_the_canary_weight():
    keys = [f"user-{n}" for n in range(2000)]
    at = {w: rules({"blue": 100 - w, "green": w}, sticky_key="header:X-User-Id") for w in (0, 30)}

    assert {ask(at[0], X_User_Id=k) for k in keys} == {"blue"}
    on_canary = [k for k in keys if ask(at[30], X_User_Id=k) == "green"]
    assert 0.26 < len(on_canary) / len(keys) < 0.34
    assert ask(at[30], X_User_Id="  ") is None  # a blank key is no key
    assert ask(rules({"green": 100}, sticky_key="cookie:uid"), {"uid": "u"}) == "green"


def test_a_sticky_key_is_ignored_without_weights():
    r = Rules(Routing(None, stable_slot="blue", canary_slot="green", sticky_key="header:U"))
    assert ask(r, U="someone") is None


@given(st.text(min_size=1), st.integers(0, 100), st.integers(0, 100))
def test_a_user_on_the_canary_stays_there_while_its_weight_grows(key, low, high):
    low, high = sorted((low, high))
    key = key.strip() or "x"
    before = rules({"blue": 100 - low, "green": low}, sticky_key="header:U")
    after = rules({"blue": 100 - high, "green": high}, sticky_key="header:U")

    if ask(before, U=key) == "green":
        assert ask(after, U=key) == "green"
    if ask(after, U=key) == "blue":
        assert ask(before, U=key) == "blue"
    assert 0 <= sticky_point(key) < 100
    assert sticky_point(key) == sticky_point(key)


def test_a_preferred_slot_serves_when_ready_and_falls_back_to_the_weights_when_not():
    slots = pools(blue=[Inst("b1", "blue")], green=[Inst("g1", "green", state="starting")])
    balancer = Balancer()

    assert balancer.choose(slots, {"blue": 0, "green": 100}, prefer="blue").id == "b1"
    assert balancer.choose(slots, {"blue": 100}, prefer="green").id == "b1"
    assert balancer.choose(slots, {"blue": 100}, prefer="gold").id == "b1"
    b1 = slots["blue"].instances[0]
    assert balancer.choose(slots, {"blue": 100}, prefer="blue", exclude=b1) is None
    assert balancer.choose_in(slots["green"]) is None
    assert balancer.choose_in(None) is None


# -- the routing body -----------------------------------------------------------------------------


def test_a_full_routing_is_read_into_a_routing():
    body = {
        "weights": {"blue": 95, "green": 5},
        "preview_slot": "green",
        "stable_slot": "blue",
        "canary_slot": "green",
        "header": "X-Canary",
        "cookie": "canary",
        "sticky_key": "cookie:uid",
    }
    assert routing(body) == Routing(**body)
    assert routing({"weights": None}) == Routing()


@pytest.mark.parametrize(
    "body, paths",
    [
        ({"weights": None, "header": "X-Canary", "canary_slot": "g"}, ["stable_slot"]),
        ({"weights": None, "sticky_key": "header:", "stable_slot": "b", "canary_slot": "g"}, None),
        ({"weights": None, "sticky_key": "header", "stable_slot": "b", "canary_slot": "g"}, None),
        ({"weights": None, "header": "", "stable_slot": "b", "canary_slot": "g"}, ["header"]),
        ({"weights": None, "preview_slot": ".hidden"}, ["preview_slot"]),
        ({"weights": {"blue": 50, "green": 40}}, ["weights"]),
    ],
)
def test_an_invalid_routing_names_each_bad_field(body, paths):
    with pytest.raises(Invalid) as caught:
        routing(body)

    found = [path for path, _ in caught.value.errors]
    assert found == (paths or ["sticky_key"])
    assert caught.value.message.startswith("invalid routing: ")
