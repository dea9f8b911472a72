"""LocalTarget (the Target protocol over the fleet agent's API) and the provider's config check."""

from __future__ import annotations

import time

import httpx
import pytest

from integrations.base import (
    InstanceStatus,
    IntegrationError,
    ReleaseRef,
    Routing,
    SlotStatus,
    TargetStatus,
)
from integrations.local.config import validate_config
from integrations.local.ports import free_port
from integrations.local.target import LocalTarget, _client_for
from tests.integrations.fleet_helpers import FAST_HEALTH, BackgroundLoad, wait_until

pytestmark = pytest.mark.timeout(60)


def local_target(agent, key, config=None, token=None):
    return LocalTarget(key, config or {}, fleet_url=agent.url, token=token or agent.token)


def release(version, **faults):
    return ReleaseRef(version, {"sample": faults}, FAST_HEALTH)


def test_status_maps_to_target_status(agent):
    target = local_target(agent, "lt.status")
    target.ensure_slot("blue", release("1.0"), replicas=2)
    target.set_weights({"blue": 100})

    status = wait_until(
        lambda: (s := target.status()).slots["blue"].available(0.2) == 2 and s,
        what="two instances ready for 0.2 s",
    )

    assert isinstance(status, TargetStatus)
    assert status.endpoint == target.endpoint
    assert status.endpoint.startswith("http://127.0.0.1:")
    assert status.weights == {"blue": 100}
    blue = status.slots["blue"]
    assert isinstance(blue, SlotStatus)
    assert (blue.name, blue.version, blue.desired) == ("blue", "1.0", 2)
    assert (blue.ready, blue.failed) == (2, 0)
    for instance in blue.instances:
        assert isinstance(instance, InstanceStatus)
        assert (instance.slot, instance.version, instance.state) == ("blue", "1.0", "ready")
        assert instance.ready_for >= 0.2
        assert instance.address.startswith("127.0.0.1:")
        assert instance.restarts == 0
    assert httpx.get(status.endpoint + "/").json()["version"] == "1.0"


def two_slots(agent, key, config=None):
    target = local_target(agent, key, config)
    target.ensure_slot("blue", release("1.0"), replicas=1)
    target.ensure_slot("green", release("2.0"), replicas=1)
    wait_until(
        lambda: (s := target.status()).slots["blue"].ready == s.slots["green"].ready == 1,
        what="blue and green ready",
    )
    return target


def test_set_routing_replaces_the_routing_and_status_reports_it(agent):
    target = two_slots(agent, "lt.routing")
    routing = Routing(
        weights={"blue": 95, "green": 5},
        preview_slot="green",
        stable_slot="blue",
        canary_slot="green",
        header="X-Canary",
        cookie="canary",
        sticky_key="header:X-User-Id",
    )

    target.set_routing(routing)
    status = target.status()

    assert status.routing == routing
    assert status.weights == {"blue": 95, "green": 5}
    assert status.preview_endpoint.startswith("http://127.0.0.1:")
    assert status.preview_endpoint != status.endpoint
    answer = httpx.get(status.preview_endpoint + "/")
    assert answer.headers["X-Switchyard-Slot"] == "green"
    answer = httpx.get(status.endpoint + "/", headers={"X-Canary": "always"})
    assert answer.headers["X-Switchyard-Slot"] == "green"

    target.set_weights({"blue": 100})  # the weights only: the rest stays

    assert target.status().routing == Routing(**{**routing.__dict__, "weights": {"blue": 100}})

    target.set_routing(Routing({"blue": 100}))

    status = target.status()
    assert status.routing == Routing({"blue": 100})
    assert status.preview_endpoint is None  # no preview slot: nothing to look at


def test_an_abort_sends_every_request_after_it_to_stable(agent):
    target = two_slots(agent, "lt.abort")
    canary = Routing({"blue": 50, "green": 50}, stable_slot="blue", canary_slot="green")
    abort = Routing({"blue": 100, "green": 0}, stable_slot="blue", canary_slot="green")
    target.set_routing(canary)
    windows = []  # (the abort call returned, the canary was about to be routed to again)

    with BackgroundLoad(target.endpoint + "/", concurrency=8) as load:
        for _ in range(5):
            seen = len(load.answers)
            wait_until(lambda n=seen: len(load.answers) > n + 100, what="traffic on the canary")
            target.set_routing(abort)
            aborted = time.monotonic()
            wait_until(
                lambda t=aborted: sum(a.started > t for a in load.answers) >= 50, what="more"
            )
            windows.append((aborted, time.monotonic()))
            target.set_routing(canary)

    assert load.failures == []
    assert {a.slot for a in load.answers} == {"blue", "green"}
    for aborted, resumed in windows:
        # sent after the abort returned and answered before the canary came back: routed while
        # the abort was in force (a request sent just before `resumed` may reach the router after)
        during = [a for a in load.answers if a.started > aborted and a.finished < resumed]
        assert len(during) >= 50
        assert {a.slot for a in during} == {"blue"}


def test_a_new_local_target_for_a_known_target_makes_one_call_per_operation(agent):
    two_slots(agent, "lt.cheap")
    sent = []
    client = _client_for(agent.url, agent.token)
    client.event_hooks = {"request": [lambda request: sent.append(request.method)]}
    try:
        local_target(agent, "lt.cheap").set_weights({"green": 100})  # as each tick does
        local_target(agent, "lt.cheap").set_routing(Routing({"blue": 100}))
        status = local_target(agent, "lt.cheap").status()
    finally:
        client.event_hooks = {"request": []}

    assert sent == ["PUT", "PUT", "GET"]  # never the target itself again
    assert status.weights == {"blue": 100}


def test_a_config_asking_for_other_ports_is_refused(agent):
    local_target(agent, "lt.moved").status()

    with pytest.raises(IntegrationError) as caught:
        local_target(agent, "lt.moved", {"preview_port": free_port()}).status()

    assert caught.value.permanent is True
    assert "preview_port" in caught.value.message


def test_it_uses_the_configured_preview_port(agent):
    port = free_port()
    target = local_target(agent, "lt.preview-port", {"preview_port": port})
    target.set_routing(Routing({"blue": 100}, preview_slot="green"))

    assert target.status().preview_endpoint == f"http://127.0.0.1:{port}"


def test_weights_none_and_removing_a_slot(agent):
    target = local_target(agent, "lt.remove")
    target.ensure_slot("green", release("2.0"), replicas=1)
    target.set_weights(None)
    wait_until(lambda: target.status().slots["green"].ready == 1, what="green ready")

    target.remove_slot("green")
    target.remove_slot("green")  # twice is fine

    assert target.status().weights is None
    wait_until(lambda: "green" not in target.status().slots, what="green gone")


def test_an_unhealthy_release_shows_as_failed(agent):
    target = local_target(agent, "lt.sick")
    target.ensure_slot("canary", release("3.0", health="fail"), replicas=1)

    slot = wait_until(
        lambda: (s := target.status().slots["canary"]).failed == 1 and s, what="a failure"
    )

    assert slot.ready == 0
    assert slot.instances[0].state == "unhealthy"


def test_it_uses_the_configured_router_port(agent):
    port = free_port()
    target = local_target(agent, "lt.port", {"router_port": port})
    assert target.endpoint == f"http://127.0.0.1:{port}"
    assert target.status().endpoint == f"http://127.0.0.1:{port}"


def test_it_creates_the_target_again_when_the_agent_forgot_it(agent):
    target = local_target(agent, "lt.forgotten")
    target.ensure_slot("blue", release("1.0"), replicas=0)
    httpx.delete(
        f"{agent.url}/targets/lt.forgotten",
        headers={"Authorization": f"Bearer {agent.token}"},
    )

    target.ensure_slot("blue", release("1.0"), replicas=1)

    assert target.status().slots["blue"].desired == 1


def test_an_invalid_release_is_a_permanent_error_naming_the_field(agent):
    target = local_target(agent, "lt.invalid")
    with pytest.raises(IntegrationError) as caught:
        target.ensure_slot("blue", ReleaseRef("1.0", {"sample": {"error_rate": 7}}), 1)

    assert caught.value.permanent is True
    assert "error_rate" in caught.value.message


def test_a_refused_token_is_a_permanent_error(agent):
    target = local_target(agent, "lt.token", token="not-the-token")
    with pytest.raises(IntegrationError) as caught:
        target.status()

    assert caught.value.permanent is True
    assert "refused the token" in caught.value.message


def test_a_dead_agent_is_a_transient_error_saying_what_to_do():
    url = f"http://127.0.0.1:{free_port()}"
    target = LocalTarget("lt.dead", {}, fleet_url=url, token="t")
    with pytest.raises(IntegrationError) as caught:
        target.status()

    assert caught.value.permanent is False
    assert f"fleet agent at {url} is not answering" in caught.value.message
    assert "manage.py fleet" in caught.value.message


# -- validate_config ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "config",
    [
        {},
        None,
        {"router_port": 9101},
        {"router_port": None},
        {"router_port": 9101, "preview_port": 9102},
        {"preview_port": None},
    ],
)
def test_it_accepts_a_valid_config(config):
    assert validate_config(config) == []


@pytest.mark.parametrize(
    "config, path",
    [
        ({"router_port": 80}, "router_port"),
        ({"router_port": 70000}, "router_port"),
        ({"router_port": "9101"}, "router_port"),
        ({"router_port": True}, "router_port"),
        ({"preview_port": 1}, "preview_port"),
        ({"router_port": 9101, "preview_port": 9101}, "preview_port"),
        ({"replicas": 3}, "replicas"),
        ([], ""),
    ],
)
def test_it_names_what_is_wrong_in_a_config(config, path):
    errors = validate_config(config)
    assert [p for p, _ in errors] == [path]
    assert all(message for _, message in errors)
