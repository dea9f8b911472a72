"""LocalTarget (the Target protocol over the fleet agent's API) and the provider's config check."""

from __future__ import annotations

import httpx
import pytest

from integrations.base import (
    InstanceStatus,
    IntegrationError,
    ReleaseRef,
    SlotStatus,
    TargetStatus,
)
from integrations.local.config import validate_config
from integrations.local.ports import free_port
from integrations.local.process import start_agent
from integrations.local.target import LocalTarget
from tests.integrations.fleet_helpers import FAST_HEALTH, wait_until

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def agent(tmp_path_factory):
    log_path = tmp_path_factory.mktemp("fleet") / "agent.log"
    with start_agent(log_path=str(log_path)) as agent:
        yield agent


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


@pytest.mark.parametrize("config", [{}, None, {"router_port": 9101}, {"router_port": None}])
def test_it_accepts_a_valid_config(config):
    assert validate_config(config) == []


@pytest.mark.parametrize(
    "config, path",
    [
        ({"router_port": 80}, "router_port"),
        ({"router_port": 70000}, "router_port"),
        ({"router_port": "9101"}, "router_port"),
        ({"router_port": True}, "router_port"),
        ({"replicas": 3}, "replicas"),
        ([], ""),
    ],
)
def test_it_names_what_is_wrong_in_a_config(config, path):
    errors = validate_config(config)
    assert [p for p, _ in errors] == [path]
    assert all(message for _, message in errors)
