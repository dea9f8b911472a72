"""The fleet agent's own life: its children never outlive it, and its state survives a restart."""

from __future__ import annotations

import os
import signal

import httpx
import pytest

from integrations.base import Routing, StaleFence
from integrations.local.ports import free_port
from integrations.local.process import start_agent
from integrations.local.target import LocalTarget
from tests.integrations.fleet_helpers import Control, wait_until

pytestmark = pytest.mark.timeout(60)


def gone(pid: int) -> bool:
    """Whether the process has exited (a zombie waiting for a reaper counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def start_two_instances(agent) -> list[int]:
    control = Control(agent)
    control.create_target("life")
    control.ensure("life", "blue", "1.0", 2)
    pids = [i["pid"] for i in control.wait_ready("life", "blue", 2)]
    control.close()
    assert all(pids) and not any(gone(pid) for pid in pids)
    return pids


def test_sigterm_stops_every_instance_and_exits_0(tmp_path):
    agent = start_agent(log_path=str(tmp_path / "agent.log"))
    pids = start_two_instances(agent)

    status = agent.stop()

    assert status == 0
    assert all(gone(pid) for pid in pids)


def test_instances_die_with_a_killed_agent(tmp_path):
    agent = start_agent(log_path=str(tmp_path / "agent.log"))
    pids = start_two_instances(agent)

    os.kill(agent.pid, signal.SIGKILL)
    agent.stop()

    wait_until(lambda: all(gone(pid) for pid in pids), timeout=5, what="orphans to die")


def test_a_restarted_agent_brings_back_targets_slots_and_weights(tmp_path):
    state_dir = str(tmp_path / "state")
    with start_agent(log_path=str(tmp_path / "first.log"), state_dir=state_dir) as agent:
        control = Control(agent)
        endpoint = control.create_target("kept")
        control.ensure("kept", "green", "4.2", 1)
        control.set_weights("kept", {"green": 100})
        control.wait_ready("kept", "green", 1)
        control.close()

    with start_agent(log_path=str(tmp_path / "second.log"), state_dir=state_dir) as agent:
        control = Control(agent)
        control.wait_ready("kept", "green", 1)
        status = control.status("kept")
        control.close()

        assert status["endpoint"] == endpoint
        assert status["weights"] == {"green": 100}
        assert httpx.get(endpoint + "/").headers["X-Switchyard-Version"] == "4.2"
    assert os.listdir(os.path.join(state_dir, "logs"))


def test_a_restarted_agent_brings_back_the_routing_and_the_preview_port(tmp_path):
    state_dir = str(tmp_path / "state")
    preview_port = free_port()
    routing = {
        "weights": {"blue": 75, "green": 25},
        "preview_slot": "green",
        "stable_slot": "blue",
        "canary_slot": "green",
        "header": "X-Canary",
        "cookie": None,
        "sticky_key": "cookie:uid",
    }
    with start_agent(log_path=str(tmp_path / "first.log"), state_dir=state_dir) as agent:
        control = Control(agent)
        control.create_target("routed", preview_port=preview_port)
        control.ensure("routed", "green", "4.2", 1)
        control.set_routing("routed", **routing)
        control.close()

    with start_agent(log_path=str(tmp_path / "second.log"), state_dir=state_dir) as agent:
        control = Control(agent)
        control.wait_ready("routed", "green", 1)
        status = control.status("routed")
        control.close()

        # the routing as it was set (the fields it did not set come back empty)
        assert status["routing"] == {"header_routes": None, "mirror_routes": None, **routing}
        assert status["preview_port"] == preview_port
        answer = httpx.get(status["preview_endpoint"] + "/")
        assert answer.headers["X-Switchyard-Version"] == "4.2"


def test_a_restarted_agent_still_refuses_a_change_fenced_older_than_one_it_applied(tmp_path):
    """The agent keeps the highest fence (deployment id, claim generation) it applied with the
    target's state, so a stale worker's call that lands after the agent restarted is refused as
    it would have been before (docs/loop.md, "Leases: short, renewed, fenced")."""
    state_dir, token = str(tmp_path / "state"), "fence-token"
    with start_agent(log_path=str(tmp_path / "first.log"), state_dir=state_dir, token=token) as a:
        control = Control(a)
        control.create_target("fenced")
        control.close()
        target = LocalTarget("fenced", {}, fleet_url=a.url, token=token)
        target.fence = (5, 3)
        target.set_routing(Routing(weights=None, stable_slot="blue"))

    with start_agent(log_path=str(tmp_path / "second.log"), state_dir=state_dir, token=token) as a:
        target = LocalTarget("fenced", {}, fleet_url=a.url, token=token)
        wait_until(lambda: Control(a).status("fenced"), what="the target restored")
        target.fence = (5, 2)  # the same deployment's older claim
        with pytest.raises(StaleFence):
            target.set_routing(Routing(weights=None, stable_slot="green"))
        with pytest.raises(StaleFence):
            target.remove_slot("blue")
        assert target.status().routing.stable_slot == "blue"
        target.fence = (5, 3)  # the claim that was applied goes on
        target.set_routing(Routing(weights=None, stable_slot="green"))
        assert target.status().routing.stable_slot == "green"
