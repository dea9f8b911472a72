"""Router correctness, for real: one agent process, real sample-app instances, real HTTP.

The split matches the weights, a change applies from the very next request, a switch or a drain
fails no request, targeting (header, cookie, sticky key) overrides the weights, and the preview
router serves only the preview slot. No database is needed (``-p no:django`` is fine).
"""

from __future__ import annotations

import random
import threading
import time

import httpx
import pytest

from integrations.local.ports import free_port
from tests.integrations.fleet_helpers import (
    BackgroundLoad,
    fire,
    fire_each,
    share,
    wait_until,
)

pytestmark = pytest.mark.timeout(90)


@pytest.fixture(scope="module")
def blue_green(control):
    """A target with one ready instance of 1.0 in blue and one of 2.0 in green."""
    endpoint = control.create_target("r.bg")
    control.ensure("r.bg", "blue", "1.0", 1)
    control.ensure("r.bg", "green", "2.0", 1)
    control.wait_ready("r.bg", "blue", 1)
    control.wait_ready("r.bg", "green", 1)
    return endpoint


def route(control, weights, **rest):
    return control.set_routing("r.bg", weights, stable_slot="blue", canary_slot="green", **rest)


# -- weights --------------------------------------------------------------------------------------


@pytest.mark.parametrize("canary", [5, 25])
def test_the_split_over_10000_requests_is_within_2_points_of_the_weight(
    control, blue_green, canary
):
    control.set_weights("r.bg", {"blue": 100 - canary, "green": canary})

    answers = fire(blue_green + "/version", 10_000, concurrency=32)

    assert {a.status for a in answers} == {200}
    slots = share(answers, "slot")
    assert slots["blue"] + slots["green"] == 10_000
    observed = slots["green"] / 100  # percent
    assert abs(observed - canary) <= 2.0, f"{observed:.2f}% on green for weight {canary}"


def test_a_weight_change_applies_to_the_very_next_request(control, blue_green):
    with httpx.Client() as client:
        for _ in range(20):
            control.set_weights("r.bg", {"blue": 0, "green": 100})
            assert client.get(blue_green + "/").headers["X-Switchyard-Slot"] == "green"
            route(control, {"blue": 100, "green": 0})
            assert client.get(blue_green + "/").headers["X-Switchyard-Slot"] == "blue"


def test_a_switch_under_load_fails_nothing_and_nothing_after_it_reaches_the_old_slot(
    control, blue_green
):
    control.set_weights("r.bg", {"blue": 100, "green": 0})
    with BackgroundLoad(blue_green + "/", concurrency=16) as load:
        wait_until(lambda: len(load.answers) >= 300, what="traffic on blue")
        switching = time.monotonic()  # an answer finished before this was routed before the switch
        control.set_weights("r.bg", {"blue": 0, "green": 100})
        switched = time.monotonic()  # the switch call has returned
        wait_until(lambda: sum(a.started > switched for a in load.answers) >= 300, what="more")

    assert load.failures == []
    assert {a.status for a in load.answers} == {200}
    # (between the call and its return the switch may be in effect already: not asserted)
    before = [a for a in load.answers if a.finished < switching]
    after = [a for a in load.answers if a.started > switched]
    assert {a.slot for a in before} == {"blue"}
    assert {a.slot for a in after} == {"green"}


def test_slow_requests_in_flight_finish_when_their_slot_is_switched_away_and_drained(control):
    endpoint = control.create_target("r.drain")
    control.ensure("r.drain", "blue", "1.0", 2, {"latency_ms": 600})
    control.ensure("r.drain", "green", "2.0", 1)
    control.set_weights("r.drain", {"blue": 100, "green": 0})
    control.wait_ready("r.drain", "blue", 2)
    control.wait_ready("r.drain", "green", 1)
    slow = []
    client = threading.Thread(target=lambda: slow.extend(fire(endpoint + "/", 24, 24)))

    with BackgroundLoad(endpoint + "/", concurrency=4) as load:
        client.start()
        wait_until(
            lambda: sum(i["inflight"] for i in control.instances("r.drain", "blue")) >= 24,
            what="24 slow requests in flight on blue",
        )
        control.set_weights("r.drain", {"blue": 0, "green": 100})
        status = control.ensure("r.drain", "blue", "1.0", 0, {"latency_ms": 600})
        client.join(10)
        wait_until(lambda: control.instances("r.drain", "blue") == [], what="blue drained")

    assert {i["state"] for i in status["slots"]["blue"]["instances"]} == {"draining"}
    assert [(a.status, a.slot) for a in slow] == [(200, "blue")] * 24
    assert load.failures == []
    assert {a.status for a in load.answers} == {200}
    assert share(load.answers, "slot")["green"] > 0


# -- header and cookie overrides -----------------------------------------------------------------


def test_the_targeting_header_and_cookie_override_the_weights(control, blue_green):
    route(control, {"blue": 100, "green": 0}, header="X-Canary", cookie="canary")
    url = blue_green + "/"

    always = fire_each(url, [{"X-Canary": "always"}] * 50 + [{"Cookie": "canary=always"}] * 50)
    shouting = fire_each(url, [{"x-canary": " ALWAYS "}] * 10)
    other = fire_each(url, [{"X-Canary": "maybe"}, {"Cookie": "canary=yes; a=b"}] * 25)

    assert {(a.status, a.slot) for a in always + shouting} == {(200, "green")}
    assert {a.slot for a in other} == {"blue"}  # not a targeting value: the weights decide

    route(control, {"blue": 0, "green": 100}, header="X-Canary", cookie="canary")
    never = fire_each(url, [{"X-Canary": "never"}] * 50 + [{"Cookie": "uid=7; canary=never"}] * 50)
    untargeted = fire(url, 50)

    assert {(a.status, a.slot) for a in never} == {(200, "blue")}
    assert {a.slot for a in untargeted} == {"green"}


def test_a_header_override_to_a_slot_with_no_ready_instance_falls_back_to_the_weights(control):
    endpoint = control.create_target("r.fallback")
    control.ensure("r.fallback", "blue", "1.0", 1)
    control.wait_ready("r.fallback", "blue", 1)
    control.set_routing(
        "r.fallback",
        {"blue": 100},
        stable_slot="blue",
        canary_slot="green",  # nothing runs there
        header="X-Canary",
    )

    answers = fire_each(endpoint + "/", [{"X-Canary": "always"}] * 20)

    assert {(a.status, a.slot) for a in answers} == {(200, "blue")}


# -- sticky placement -----------------------------------------------------------------------------


def _placements(url: str, keys: list[str], header: str = "X-User-Id") -> dict[str, set[str]]:
    """Each key sent three times, interleaved with the others: key -> every slot it landed on."""
    order = keys * 3
    random.Random(len(keys)).shuffle(order)
    answers = fire_each(url, [{header: key} for key in order])
    assert {a.status for a in answers} == {200}
    seen: dict[str, set[str]] = {}
    for key, answer in zip(order, answers, strict=True):
        seen.setdefault(key, set()).add(answer.slot)
    return seen


def test_a_sticky_key_keeps_a_user_on_one_slot_and_the_canary_cohort_only_grows(
    control, blue_green
):
    keys = [f"user-{n}" for n in range(400)]
    cohorts = []
    for canary in (5, 25, 50):
        route(control, {"blue": 100 - canary, "green": canary}, sticky_key="header:X-User-Id")
        seen = _placements(blue_green + "/", keys)
        assert all(len(slots) == 1 for slots in seen.values()), "a user flipped between slots"
        on_canary = {key for key, slots in seen.items() if slots == {"green"}}
        assert abs(len(on_canary) / len(keys) * 100 - canary) <= 10
        cohorts.append(on_canary)

    assert cohorts[0] <= cohorts[1] <= cohorts[2]
    assert len(cohorts[0]) < len(cohorts[2])

    # and while the weight shrinks, users on stable stay there
    route(control, {"blue": 75, "green": 25}, sticky_key="header:X-User-Id")
    seen = _placements(blue_green + "/", keys)
    assert {key for key, slots in seen.items() if slots == {"green"}} == cohorts[1]


def test_requests_without_the_sticky_key_are_spread_by_weight(control, blue_green):
    route(control, {"blue": 50, "green": 50}, sticky_key="cookie:uid")

    keyed = fire_each(blue_green + "/", [{"Cookie": "uid=alice"}] * 60)
    unkeyed = fire(blue_green + "/", 400)

    assert len({a.slot for a in keyed}) == 1
    assert 120 <= share(unkeyed, "slot")["green"] <= 280


def test_the_override_header_wins_over_the_sticky_key(control, blue_green):
    route(control, {"blue": 50, "green": 50}, header="X-Canary", sticky_key="header:X-User-Id")
    keys = [f"user-{n}" for n in range(60)]

    always = fire_each(blue_green + "/", [{"X-User-Id": k, "X-Canary": "always"} for k in keys])
    never = fire_each(blue_green + "/", [{"X-User-Id": k, "X-Canary": "never"} for k in keys])

    assert {a.slot for a in always} == {"green"}
    assert {a.slot for a in never} == {"blue"}


# -- the preview router ---------------------------------------------------------------------------


def test_the_preview_endpoint_serves_only_the_preview_slot(control):
    preview_port = free_port()
    endpoint = control.create_target("r.preview", preview_port=preview_port)
    control.ensure("r.preview", "blue", "1.0", 2)
    control.ensure("r.preview", "green", "2.0", 1)
    control.wait_ready("r.preview", "blue", 2)
    control.wait_ready("r.preview", "green", 1)
    status = control.status("r.preview")
    preview = status["preview_endpoint"]
    assert preview == f"http://127.0.0.1:{preview_port}"
    assert status["preview_port"] == preview_port

    response = httpx.get(preview + "/")  # no preview slot yet
    assert response.status_code == 503
    assert response.json()["code"] == "no_preview"

    control.set_routing("r.preview", {"blue": 100}, preview_slot="green")
    on_preview = fire(preview + "/", 300)
    on_main = fire(endpoint + "/", 300)

    assert {(a.status, a.slot, a.version) for a in on_preview} == {(200, "green", "2.0")}
    assert {(a.status, a.slot) for a in on_main} == {(200, "blue")}

    control.set_routing("r.preview", {"blue": 100}, preview_slot="gold")  # nothing runs there
    response = httpx.get(preview + "/")
    assert response.status_code == 503
    assert response.json()["code"] == "no_ready_instance"
    assert "X-Switchyard-Slot" not in response.headers


def test_the_preview_endpoint_follows_the_preview_slot_from_the_next_request(control):
    control.create_target("r.follow")
    control.ensure("r.follow", "blue", "1.0", 1)
    control.ensure("r.follow", "green", "2.0", 1)
    control.wait_ready("r.follow", "blue", 1)
    control.wait_ready("r.follow", "green", 1)
    preview = control.status("r.follow")["preview_endpoint"]

    with httpx.Client() as client:
        for slot in ("green", "blue") * 5:
            control.set_routing("r.follow", {"blue": 100}, preview_slot=slot)
            assert client.get(preview + "/").headers["X-Switchyard-Slot"] == slot


# -- the routing API ------------------------------------------------------------------------------


def test_it_reports_the_whole_routing_and_put_weights_keeps_the_rest(control):
    control.create_target("r.api")
    routing = {
        "weights": {"blue": 90, "green": 10},
        "preview_slot": "green",
        "stable_slot": "blue",
        "canary_slot": "green",
        "header": "X-Canary",
        "cookie": "canary",
        "sticky_key": "header:X-User-Id",
    }
    response = control.http.put("/targets/r.api/routing", json=routing)
    assert response.status_code == 200
    routing.update(header_routes=None, mirror_routes=None)  # reported whole: unset keys as null
    assert response.json()["routing"] == routing

    control.set_weights("r.api", {"blue": 50, "green": 50})

    status = control.status("r.api")
    assert status["routing"] == {**routing, "weights": {"blue": 50, "green": 50}}
    assert status["weights"] == {"blue": 50, "green": 50}
    assert status["preview_endpoint"].startswith("http://127.0.0.1:")

    control.set_routing("r.api", None)  # the whole routing: what is not given is null
    assert control.status("r.api")["routing"] == dict.fromkeys(routing)


TARGETED = {"weights": None, "stable_slot": "b", "canary_slot": "g"}


@pytest.mark.parametrize(
    "body, paths",
    [
        ({}, ["weights"]),
        ({"weights": {"blue": 90}}, ["weights"]),
        ({"weights": None, "colour": "red"}, ["colour"]),
        ({"weights": None, "preview_slot": "no slot"}, ["preview_slot"]),
        ({"weights": None, "stable_slot": 3}, ["stable_slot"]),
        ({"weights": None, "stable_slot": "blue", "canary_slot": "blue"}, ["canary_slot"]),
        ({**TARGETED, "header": "X Canary"}, ["header"]),
        ({**TARGETED, "cookie": "a;b"}, ["cookie"]),
        ({"weights": None, "header": "X-Canary"}, ["stable_slot", "canary_slot"]),
        ({"weights": None, "sticky_key": "cookie:uid", "stable_slot": "b"}, ["canary_slot"]),
        (
            {**TARGETED, "sticky_key": "query:uid"},
            ["sticky_key"],
        ),
        (
            {"weights": {"blue": "100"}, "sticky_key": 7},
            ["weights.blue", "sticky_key", "stable_slot", "canary_slot"],
        ),
        ([], [""]),
    ],
)
def test_it_rejects_an_invalid_routing_naming_each_bad_field(control, body, paths):
    control.create_target("r.invalid")
    control.set_routing("r.invalid", {"blue": 100})

    response = control.http.put("/targets/r.invalid/routing", json=body)

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_request"
    assert [e["path"] for e in response.json()["details"]["errors"]] == paths
    assert control.status("r.invalid")["routing"]["weights"] == {"blue": 100}  # unchanged


@pytest.mark.parametrize(
    "body, path",
    [
        ({"preview_port": 80}, "preview_port"),
        ({"preview_port": "9000"}, "preview_port"),
        ({"router_port": 20000, "preview_port": 20000}, "preview_port"),
    ],
)
def test_it_rejects_an_invalid_preview_port(control, body, path):
    response = control.http.put("/targets/r.badport", json=body)

    assert response.status_code == 400
    assert [e["path"] for e in response.json()["details"]["errors"]] == [path]


def test_it_refuses_a_preview_port_another_target_uses(control):
    port = free_port()
    control.create_target("r.port-owner", router_port=port)

    response = control.http.put("/targets/r.port-squatter", json={"preview_port": port})

    assert response.status_code == 409
    assert "r.port-owner" in response.json()["message"]
    assert control.http.get("/targets/r.port-squatter").status_code == 404
