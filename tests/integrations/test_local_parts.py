"""The local fleet's pure parts: instance choice, artifacts, faults, counters."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field

from integrations.local.artifacts import parse_artifact, parse_health
from integrations.local.balancing import Balancer
from integrations.local.faults import parse_faults
from integrations.local.stats import TargetStats, code_class, prometheus_text, stats_json


@dataclass(eq=False)
class Inst:
    id: str
    slot: str
    inflight: int = 0
    state: str = "ready"
    version: str = "1"
    restarts: int = 0
    target_key: str = "t"


@dataclass
class Pool:
    instances: list[Inst] = field(default_factory=list)

    def ready_instances(self):
        return [i for i in self.instances if i.state == "ready"]


def pools(**slots: list[Inst]) -> dict[str, Pool]:
    return {name: Pool(instances) for name, instances in slots.items()}


def test_it_picks_slots_by_weight():
    balancer = Balancer(random.Random(7))
    slots = pools(blue=[Inst("b1", "blue")], green=[Inst("g1", "green")])
    picks = Counter(balancer.choose(slots, {"blue": 75, "green": 25}).slot for _ in range(4000))
    assert 0.72 < picks["blue"] / 4000 < 0.78


def test_a_zero_weight_slot_gets_nothing_while_the_other_can_serve():
    slots = pools(blue=[Inst("b1", "blue")], green=[Inst("g1", "green")])
    balancer = Balancer()
    assert {balancer.choose(slots, {"blue": 100, "green": 0}).slot for _ in range(200)} == {"blue"}


def test_it_falls_back_to_any_ready_instance_rather_than_fail():
    slots = pools(blue=[Inst("b1", "blue", state="unhealthy")], green=[Inst("g1", "green")])
    assert Balancer().choose(slots, {"blue": 100}).id == "g1"
    assert Balancer().choose(slots, {"blue": 100}, exclude=slots["green"].instances[0]) is None


def test_it_prefers_another_weighted_slot_over_an_unweighted_one():
    slots = pools(
        blue=[Inst("b1", "blue", state="crashed")],
        green=[Inst("g1", "green")],
        spare=[Inst("s1", "spare")],
    )
    balancer = Balancer()
    assert {balancer.choose(slots, {"blue": 50, "green": 50}).id for _ in range(50)} == {"g1"}


def test_without_weights_it_spreads_over_every_ready_instance():
    slots = pools(blue=[Inst("b1", "blue"), Inst("b2", "blue")], green=[Inst("g1", "green")])
    balancer = Balancer()
    picks = Counter(balancer.choose(slots, None).id for _ in range(300))
    assert picks == {"b1": 100, "b2": 100, "g1": 100}


def test_it_prefers_the_least_busy_instance():
    busy, idle = Inst("b1", "blue", inflight=5), Inst("b2", "blue", inflight=0)
    balancer = Balancer()
    assert {balancer.choose(pools(blue=[busy, idle]), {"blue": 100}).id for _ in range(9)} == {"b2"}


def test_nothing_ready_means_no_instance():
    assert Balancer().choose(pools(blue=[Inst("b1", "blue", state="starting")]), None) is None
    assert Balancer().choose({}, {"blue": 100}) is None


def test_it_reads_every_fault_and_names_unknown_ones():
    faults, errors = parse_faults(
        {"error_rate": 0.2, "latency_ms": 150, "health": "fail", "crash_after": "30s", "x": 1}
    )
    assert (faults.error_rate, faults.latency_ms, faults.health_fails) == (0.2, 150, True)
    assert faults.crash_after == 30
    assert [key for key, _ in errors] == ["x"]


def test_an_empty_artifact_is_the_healthy_sample_app():
    spec, errors = parse_artifact({}, "1.0")
    assert errors == []
    assert spec.is_sample
    assert spec.command(4000)[-5:] == ["4000", "--version", "1.0", "--config", "{}"]


def test_a_command_artifact_gets_its_port_and_health_path():
    artifact = {"command": ["python", "app.py", "--port={port}"], "health_path": "/ready"}
    spec, errors = parse_artifact(artifact, "1.0")
    health, health_errors = parse_health({"interval": "200ms"}, spec.health_path)
    assert errors == health_errors == []
    assert spec.command(4001)[1:] == ["app.py", "--port=4001"]
    assert (health.path, health.interval, health.healthy_threshold) == ("/ready", 0.2, 2)


def test_it_names_each_bad_field_of_an_artifact():
    _, errors = parse_artifact({"command": [], "health_path": "ready", "image": "x"}, "1")
    assert [path for path, _ in errors] == [
        "artifact.command",
        "artifact.health_path",
        "artifact.image",
    ]


def test_counters_as_prometheus_text_and_json():
    stats = TargetStats("api.prod")
    live = Inst("blue-1", "blue", version="1.4", inflight=2, target_key="api.prod")
    series = stats.for_instance("blue", "blue-1", "1.4")
    stats.observe(series, code_class(200), 0.004)
    stats.observe(series, code_class(503), 0.3)
    stats.observe(series, "error", 0.001)

    text = prometheus_text([stats], [live])
    data = stats_json(stats, [live])

    labels = 'target="api.prod",slot="blue",instance="blue-1",version="1.4"'
    assert f'switchyard_router_requests_total{{{labels},code_class="5xx"}} 1' in text
    assert f'switchyard_router_request_duration_seconds_bucket{{{labels},le="0.005"}} 2' in text
    assert f'switchyard_router_request_duration_seconds_bucket{{{labels},le="+Inf"}} 3' in text
    assert f"switchyard_router_inflight{{{labels}}} 2" in text
    blue = data["slots"]["blue"]
    assert blue["requests"] == {"2xx": 1, "3xx": 0, "4xx": 0, "5xx": 1, "error": 1}
    assert blue["latency_ms"]["buckets"]["250"] == 2
    assert blue["latency_ms"]["buckets"]["500"] == 3
    assert blue["inflight"] == 2
    assert blue["instances"]["blue-1"]["state"] == "ready"


def test_a_command_the_agent_cannot_run_is_refused_up_front():
    _, errors = parse_artifact({"command": ["/nonexistent/server", "--port", "{port}"]}, "1")
    assert [path for path, _ in errors] == ["artifact.command"]
    assert "/nonexistent/server" in errors[0][1]
