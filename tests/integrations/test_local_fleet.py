"""The local fleet agent, for real: one agent process, real sample app instances, real HTTP.

No database is needed (``-p no:django`` is fine).
"""

from __future__ import annotations

import json
import socket
import threading
import time

import httpx
import pytest

from integrations.local.ports import free_port
from integrations.local.process import start_agent
from tests.integrations.fleet_helpers import (
    BackgroundLoad,
    Control,
    fire,
    share,
    wait_until,
)

pytestmark = pytest.mark.timeout(60)


# -- the control API ------------------------------------------------------------------------------


def test_healthz_needs_no_token(agent):
    response = httpx.get(f"{agent.url}/healthz")
    assert response.status_code == 200
    assert response.json()["ok"] is True


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "x"}])
def test_it_refuses_calls_without_the_token(agent, headers):
    response = httpx.get(f"{agent.url}/targets", headers=headers)
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"
    assert "Bearer" in response.json()["message"]


def test_it_answers_calls_with_the_token(agent):
    headers = {"Authorization": f"Bearer {agent.token}"}
    response = httpx.get(f"{agent.url}/targets", headers=headers)
    assert response.status_code == 200
    assert isinstance(response.json()["targets"], list)


def test_it_creates_a_target_idempotently(control):
    first = control.http.put("/targets/t.create", json={"router_port": None})
    again = control.http.put("/targets/t.create", json={})
    assert first.status_code == 201
    assert again.status_code == 200
    assert again.json()["endpoint"] == first.json()["endpoint"]
    assert first.json()["endpoint"].startswith("http://127.0.0.1:")
    keys = [t["key"] for t in control.http.get("/targets").json()["targets"]]
    assert "t.create" in keys


def test_it_refuses_a_router_port_that_is_taken(control):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        response = control.http.put("/targets/t.taken", json={"router_port": port})
    assert response.status_code == 409
    assert response.json()["code"] == "conflict"
    assert str(port) in response.json()["message"]
    assert control.http.get("/targets/t.taken").status_code == 404


def test_it_refuses_a_router_port_another_target_has(control):
    port = free_port()
    assert control.http.put("/targets/t.owner", json={"router_port": port}).status_code == 201
    response = control.http.put("/targets/t.squatter", json={"router_port": port})
    assert response.status_code == 409
    assert "t.owner" in response.json()["message"]


@pytest.mark.parametrize(
    "body, bad_path",
    [
        ({"version": "1.0", "replicas": -1}, "replicas"),
        ({"replicas": 1}, "version"),
        ({"version": "1.0", "replicas": 1, "artifact": {"sample": {"error_rate": 2}}}, None),
        ({"version": "1.0", "replicas": 1, "artifact": {"command": "not a list"}}, None),
        ({"version": "1.0", "replicas": 1, "health": {"interval": "soon"}}, "health.interval"),
        ({"version": "1.0", "replicas": 1, "colour": "red"}, "colour"),
    ],
)
def test_it_rejects_an_invalid_slot_with_the_field_named(control, body, bad_path):
    control.create_target("t.invalid")
    response = control.http.put("/targets/t.invalid/slots/blue", json=body)
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_request"
    paths = [error["path"] for error in response.json()["details"]["errors"]]
    assert paths
    if bad_path:
        assert bad_path in paths


def test_it_rejects_a_body_that_is_not_json(control):
    control.create_target("t.invalid")
    response = control.http.put(
        "/targets/t.invalid/weights",
        content=b"{nope",
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_request"


@pytest.mark.parametrize(
    "weights", [{"blue": 90, "green": 20}, {"blue": 101}, {"blue": "100"}, {"blue": True}]
)
def test_it_rejects_weights_that_are_not_percentages_adding_to_100(control, weights):
    control.create_target("t.invalid")
    response = control.http.put("/targets/t.invalid/weights", json={"weights": weights})
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_request"


def test_it_answers_404_for_an_unknown_target(control):
    for method, path in [
        ("GET", "/targets/t.nowhere"),
        ("PUT", "/targets/t.nowhere/weights"),
        ("DELETE", "/targets/t.nowhere"),
    ]:
        response = control.http.request(method, path, json={"weights": None})
        assert response.status_code == 404, (method, path)
        assert response.json()["code"] == "not_found"


# -- routing --------------------------------------------------------------------------------------


def test_it_routes_to_ready_instances_and_says_which(control):
    endpoint = control.create_target("t.basic")
    control.ensure("t.basic", "blue", "1.0", 2)
    ready = control.wait_ready("t.basic", "blue", 2)

    answers = fire(endpoint + "/some/path?q=1", 40, concurrency=4)

    assert {a.status for a in answers} == {200}
    assert {a.version for a in answers} == {"1.0"}
    assert {a.slot for a in answers} == {"blue"}
    assert {a.instance for a in answers} == {i["id"] for i in ready}
    response = httpx.post(endpoint + "/echo?x=1", content=b"hello")
    assert response.status_code == 200
    assert response.json()["version"] == "1.0"
    assert response.json()["path"] == "/echo"


def test_it_answers_503_when_no_instance_is_ready(control):
    endpoint = control.create_target("t.empty")
    response = httpx.get(endpoint + "/")
    assert response.status_code == 503
    assert response.json()["code"] == "no_ready_instance"
    assert control.metrics_json()["targets"]["t.empty"]["unrouted"] >= 1


def test_it_splits_traffic_by_weight_and_evenly_without_weights(control):
    endpoint = control.create_target("t.split")
    control.ensure("t.split", "blue", "1.0", 2)
    control.ensure("t.split", "green", "1.1", 1)
    control.wait_ready("t.split", "blue", 2)
    control.wait_ready("t.split", "green", 1)

    control.set_weights("t.split", {"blue": 90, "green": 10})
    answers = fire(endpoint + "/", 2000, concurrency=16)
    assert {a.status for a in answers} == {200}
    versions = share(answers, "version")
    assert 0.07 <= versions["1.1"] / 2000 <= 0.13, versions
    assert versions["1.0"] + versions["1.1"] == 2000

    control.set_weights("t.split", {"green": 100})
    assert {a.version for a in fire(endpoint + "/", 50, concurrency=4)} == {"1.1"}

    control.set_weights("t.split", None)
    answers = fire(endpoint + "/", 300, concurrency=1)  # one at a time: plain round-robin
    per_instance = share(answers, "instance")
    assert len(per_instance) == 3, per_instance
    assert min(per_instance.values()) >= 80, per_instance
    answers = fire(endpoint + "/", 300, concurrency=8)
    assert len(share(answers, "instance")) == 3


def test_a_failing_health_check_never_gets_ready_nor_traffic(control):
    endpoint = control.create_target("t.sick")
    control.ensure("t.sick", "blue", "1.0", 1)
    control.ensure("t.sick", "green", "2.0", 1, {"health": "fail"})
    control.set_weights("t.sick", {"green": 100})
    control.wait_ready("t.sick", "blue", 1)
    wait_until(
        lambda: control.instances("t.sick", "green")[0]["state"] == "unhealthy",
        what="the green instance to be unhealthy",
    )

    answers = fire(endpoint + "/", 100, concurrency=4)

    assert {(a.status, a.slot) for a in answers} == {(200, "blue")}
    green = control.metrics_json()["targets"]["t.sick"]["slots"]["green"]
    assert green["total"] == 0
    assert control.instances("t.sick", "green")[0]["state"] == "unhealthy"


def test_injected_errors_are_counted_as_5xx(control):
    endpoint = control.create_target("t.errors")
    control.ensure("t.errors", "blue", "1.0", 1, {"error_rate": 1.0})
    (instance,) = control.wait_ready("t.errors", "blue", 1)

    answers = fire(endpoint + "/", 25, concurrency=5)

    assert {a.status for a in answers} == {500}
    slot = control.metrics_json()["targets"]["t.errors"]["slots"]["blue"]
    assert slot["requests"]["5xx"] == 25
    assert slot["requests"]["2xx"] == 0
    assert slot["versions"]["1.0"]["requests"]["5xx"] == 25
    assert slot["instances"][instance["id"]]["requests"]["5xx"] == 25
    assert slot["latency_ms"]["count"] == 25
    text = control.http.get("/metrics").text
    labels = f'target="t.errors",slot="blue",instance="{instance["id"]}",version="1.0"'
    assert f'switchyard_router_requests_total{{{labels},code_class="5xx"}} 25' in text
    assert f"switchyard_router_request_duration_seconds_count{{{labels}}} 25" in text
    assert f'switchyard_router_request_duration_seconds_bucket{{{labels},le="+Inf"}} 25' in text
    assert f"switchyard_instance_up{{{labels}}} 1" in text
    own = httpx.get(endpoint + "/_switchyard/metrics.json").json()
    assert own["slots"]["blue"]["requests"]["5xx"] == 25


def test_a_crashed_instance_is_restarted_and_no_get_fails_meanwhile(control):
    endpoint = control.create_target("t.crash")
    control.ensure("t.crash", "blue", "1.0", 1, {"crash_after": "0.8s"})
    control.ensure("t.crash", "green", "1.0", 1)
    control.wait_ready("t.crash", "blue", 1)
    control.wait_ready("t.crash", "green", 1)

    with BackgroundLoad(endpoint + "/", concurrency=8) as load:
        (instance,) = wait_until(
            lambda: [i for i in control.instances("t.crash", "blue") if i["restarts"] >= 1],
            timeout=10,
            what="a restart",
        )

    assert instance["state"] in ("starting", "ready", "crashed")
    assert load.failures == []
    assert {a.status for a in load.answers} == {200}
    assert {a.slot for a in load.answers} == {"blue", "green"}
    control.http.delete("/targets/t.crash")


def test_a_new_version_replaces_the_slot_instances(control):
    endpoint = control.create_target("t.replace")
    control.ensure("t.replace", "blue", "1.0", 2)
    old = {i["id"] for i in control.wait_ready("t.replace", "blue", 2)}

    control.ensure("t.replace", "blue", "2.0", 2)
    new = control.wait_ready("t.replace", "blue", 2)
    wait_until(lambda: len(control.instances("t.replace", "blue")) == 2, what="old ones gone")

    assert old.isdisjoint(i["id"] for i in new)
    assert {i["version"] for i in new} == {"2.0"}
    assert {a.version for a in fire(endpoint + "/", 20, concurrency=2)} == {"2.0"}


def test_it_runs_a_command_artifact(control):
    endpoint = control.create_target("t.command")
    command = ["python", "-m", "integrations.local.sample_app", "--port", "{port}"]
    artifact = {"command": [*command, "--version", "cmd-7"], "health_path": "/health"}
    control.ensure("t.command", "blue", "7", 1, artifact=artifact)
    control.wait_ready("t.command", "blue", 1)

    response = httpx.get(endpoint + "/")

    assert response.status_code == 200
    assert response.json()["version"] == "cmd-7"  # what the process itself says
    assert response.headers["X-Switchyard-Version"] == "7"  # what the agent was told


# -- drain ----------------------------------------------------------------------------------------


def test_requests_in_flight_finish_when_the_slot_scales_to_zero(control):
    endpoint = control.create_target("t.drain")
    control.ensure("t.drain", "blue", "1.0", 2, {"latency_ms": 400})
    control.wait_ready("t.drain", "blue", 2)
    answers = []
    client = threading.Thread(target=lambda: answers.extend(fire(endpoint + "/", 20, 20)))
    client.start()
    wait_until(
        lambda: sum(i["inflight"] for i in control.instances("t.drain", "blue")) == 20,
        what="20 requests in flight",
    )

    status = control.ensure("t.drain", "blue", "1.0", 0, {"latency_ms": 400})
    client.join(10)

    assert {i["state"] for i in status["slots"]["blue"]["instances"]} == {"draining"}
    assert [a.status for a in answers] == [200] * 20
    wait_until(lambda: control.instances("t.drain", "blue") == [], what="the slot to be empty")


def test_no_request_fails_while_a_slot_scales_down_under_load(control):
    endpoint = control.create_target("t.scale")
    faults = {"latency_ms": 20, "latency_jitter_ms": 10}
    control.ensure("t.scale", "blue", "1.0", 3, faults)
    control.wait_ready("t.scale", "blue", 3)

    with BackgroundLoad(endpoint + "/", concurrency=8) as load:
        time.sleep(0.5)
        control.ensure("t.scale", "blue", "1.0", 1, faults)
        wait_until(lambda: len(control.instances("t.scale", "blue")) == 1, what="scale to 1")
        time.sleep(0.3)

    assert load.failures == []
    assert len(load.answers) > 50
    assert {a.status for a in load.answers} == {200}
    assert len({a.instance for a in load.answers}) == 3


def test_deleting_a_slot_and_a_target_stops_everything(control):
    endpoint = control.create_target("t.delete")
    control.ensure("t.delete", "blue", "1.0", 1)
    control.ensure("t.delete", "green", "1.0", 1)
    control.wait_ready("t.delete", "blue", 1)

    assert control.http.delete("/targets/t.delete/slots/blue").status_code == 202
    wait_until(lambda: "blue" not in control.status("t.delete")["slots"], what="blue gone")
    assert control.http.delete("/targets/t.delete").status_code == 202

    assert control.http.get("/targets/t.delete").status_code == 404
    with pytest.raises(httpx.ConnectError):
        httpx.get(endpoint + "/")


def test_metrics_json_is_json_per_target_and_slot(control):
    control.create_target("t.basic")
    control.ensure("t.basic", "blue", "1.0", 1)  # (not left to an earlier test)
    data = control.metrics_json()
    assert "t.basic" in data["targets"]
    blue = data["targets"]["t.basic"]["slots"]["blue"]
    assert set(blue["requests"]) == {"2xx", "3xx", "4xx", "5xx", "error"}
    assert list(blue["latency_ms"]["buckets"])[-1] == "+Inf"
    json.dumps(data)


def test_metrics_json_answers_for_the_targets_asked_for_only(control):
    """An analysis reads one target: the agent answers for it alone (reading every target per
    measurement is what stopped the agent answering at 100 canaries); unknown keys are left
    out, and with no ``target`` the answer holds every target, as the live charts read it."""
    for key in ("t.one", "t.two", "t.three"):
        control.create_target(key)
    one = control.http.get("/metrics.json", params={"target": "t.one"}).json()
    assert list(one["targets"]) == ["t.one"]
    assert "slots" in one["targets"]["t.one"]
    two = control.http.get(
        "/metrics.json", params=[("target", "t.two"), ("target", "t.three"), ("target", "t.none")]
    ).json()
    assert sorted(two["targets"]) == ["t.three", "t.two"]
    assert {"t.one", "t.two", "t.three"} <= set(control.metrics_json()["targets"])

    from integrations.local.metrics_reader import read_counters

    read = read_counters(control.agent.url, control.agent.token, targets=["t.two"])
    assert list(read) == ["t.two"] and "slots" in read["t.two"]


def test_a_second_agent_cannot_take_a_used_control_port(agent, tmp_path):
    with pytest.raises(RuntimeError, match="exited with status 1"):
        start_agent(agent.port, log_path=str(tmp_path / "second.log"))


def test_a_slow_instance_is_answered_504_and_counted_as_an_error(tmp_path):
    log_path = str(tmp_path / "agent.log")
    with start_agent(log_path=log_path, extra_args=["--upstream-timeout", "0.3"]) as agent:
        control = Control(agent)
        endpoint = control.create_target("t.slow")
        control.ensure("t.slow", "blue", "1.0", 1, {"latency_ms": 2000})
        control.wait_ready("t.slow", "blue", 1)

        response = httpx.get(endpoint + "/", timeout=10)

        assert response.status_code == 504
        assert response.json()["code"] == "upstream_timeout"
        assert response.headers["X-Switchyard-Slot"] == "blue"
        blue = control.metrics_json()["targets"]["t.slow"]["slots"]["blue"]
        assert blue["requests"]["error"] == 1
        control.close()
