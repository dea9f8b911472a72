"""Mirror routes on the local router (Argo Rollouts' setMirrorRoute, a dark launch): a copy of a
share of the matching requests goes to the canary slot and its answer is dropped; users are
answered by the slot the weights chose. The router test runs a real fleet agent and real
instances over HTTP."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from multidict import CIMultiDict

from integrations.local.mirroring import compile_routes
from integrations.local.validation import Invalid, routing
from tests.integrations.fleet_helpers import Control, fire, wait_until

POSTS = {
    "name": "posts",
    "percentage": 100,
    "match": [{"method": {"exact": "POST"}, "path": {"prefix": "/color"}}],
}


def wants(route, method="GET", path="/", **headers) -> bool:
    (mirror,) = compile_routes([route])
    names = CIMultiDict({k.replace("_", "-"): v for k, v in headers.items()})
    return mirror.wants(method, path, names)


def test_a_mirror_route_copies_the_requests_matching_any_of_its_matches():
    assert wants(POSTS, "POST", "/color/red")
    assert not wants(POSTS, "GET", "/color/red")
    assert not wants(POSTS, "POST", "/colour")
    beta = {"name": "b", "percentage": 100, "match": [{"headers": {"X-Beta": {"regex": "y.*"}}}]}
    assert wants(beta, X_Beta="yes") and not wants(beta, X_Beta="no") and not wants(beta)
    assert wants({"name": "all", "percentage": 100, "match": []})
    assert not wants({**POSTS, "percentage": 0}, "POST", "/color")


def test_a_mirror_route_copies_about_its_percentage():
    (mirror,) = compile_routes([{"name": "half", "percentage": 50, "match": []}])
    copied = sum(mirror.wants("GET", "/", CIMultiDict()) for _ in range(10_000))
    assert 4_700 < copied < 5_300


def test_a_routing_with_mirror_routes_is_checked_naming_each_bad_field():
    good = routing(
        {"weights": None, "stable_slot": "a", "canary_slot": "b", "mirror_routes": [POSTS]}
    )
    assert good.mirror_routes == (POSTS,)
    with pytest.raises(Invalid) as caught:
        routing(
            {
                "weights": None,
                "mirror_routes": [
                    {"name": "x", "percentage": 101, "match": [{"path": {"glob": "/*"}}]},
                    {"name": "y", "match": [{"headers": {"X-A": {"regex": "("}}}]},
                ],
            }
        )
    assert [path for path, _ in caught.value.errors] == [
        "mirror_routes[0].percentage",
        "mirror_routes[0].match[0].path",
        "mirror_routes[1].match[0].headers.X-A.regex",
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


def slot_requests(control, key, slot) -> int:
    slots = control.metrics_json()["targets"][key]["slots"]
    return sum((slots.get(slot) or {}).get("requests", {}).values())


@pytest.mark.timeout(90)
def test_the_router_copies_matching_requests_to_the_canary_and_answers_from_the_stable(control):
    endpoint = control.create_target("mr.shop")
    control.ensure("mr.shop", "blue", "1.0", 1)
    control.ensure("mr.shop", "green", "2.0", 1)
    control.wait_ready("mr.shop", "blue", 1)
    control.wait_ready("mr.shop", "green", 1)
    control.set_routing(
        "mr.shop",
        {"blue": 100, "green": 0},
        stable_slot="blue",
        canary_slot="green",
        mirror_routes=[POSTS],
    )
    before = slot_requests(control, "mr.shop", "green")

    async def post(count: int) -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=5) as client:
            return await asyncio.gather(
                *(client.post(endpoint + "/color", content=b"red") for _ in range(count))
            )

    posted = asyncio.run(post(30))
    fetched = fire(endpoint + "/", 20)

    assert {(r.status_code, r.headers["x-switchyard-version"]) for r in posted} == {(200, "1.0")}
    assert {(a.status, a.version) for a in fetched} == {(200, "1.0")}
    wait_until(
        lambda: slot_requests(control, "mr.shop", "green") - before == 30,
        what="30 copies on the canary slot",
    )
    assert control.status("mr.shop")["routing"]["mirror_routes"] == [POSTS]


def dark_launch(control, key) -> dict:
    return control.metrics_json()["targets"][key]["dark_launch"]


@pytest.mark.timeout(120)
def test_the_router_compares_each_copy_with_the_users_answer_and_never_delays_it(control):
    """A dark launch as Scientist runs one: the canary (2.0) answers /health like the stable
    slot, /version differently (the body) and / with 500s after 300 ms; users get the stable
    answers at the stable speed, and the router counts each kind of difference."""
    endpoint = control.create_target("dl.shop")
    control.ensure("dl.shop", "blue", "1.0", 1)
    control.ensure("dl.shop", "green", "2.0", 1, {"error_rate": 1.0, "latency_ms": 300})
    control.wait_ready("dl.shop", "blue", 1)
    control.wait_ready("dl.shop", "green", 1)
    everything = {"name": "all", "percentage": 100, "match": []}
    control.set_routing(
        "dl.shop",
        {"blue": 100, "green": 0},
        stable_slot="blue",
        canary_slot="green",
        mirror_routes=[everything],
    )
    health = fire(endpoint + "/health", 10)
    versions = fire(endpoint + "/version", 10)

    async def index(count: int):
        async with httpx.AsyncClient(timeout=5) as client:
            answers = []
            for _ in range(count):  # one at a time: each one's own latency
                answers.append(await client.get(endpoint + "/"))
            return answers

    started = time.perf_counter()
    answers = asyncio.run(index(10))
    per_request = (time.perf_counter() - started) / 10
    assert {a.status for a in health} == {200} and {a.status for a in versions} == {200}
    assert {(a.status_code, a.json()["version"]) for a in answers} == {(200, "1.0")}
    assert per_request < 0.15  # the copies' 300 ms never reach the user
    wait_until(lambda: dark_launch(control, "dl.shop")["compared"] == 30, what="30 pairs")
    dark = dark_launch(control, "dl.shop")
    assert (dark["matched"], dark["body_mismatches"], dark["status_mismatches"]) == (10, 10, 10)
    assert dark["mirror_errors"] == dark["stable_errors"] == 0
    assert dark["mismatch_rate"] == pytest.approx(20 / 30)
    assert dark["latency_ms"]["mirror_p99"] >= 300 > dark["latency_ms"]["stable_p99"]
    kinds = {s["kind"] for s in dark["samples"]}
    assert kinds == {"body", "status"}
    status = next(s for s in dark["samples"] if s["kind"] == "status")
    assert status["stable"]["status"] == 200 and status["mirror"]["status"] == 500
