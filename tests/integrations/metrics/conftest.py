"""A real fleet agent with one target (stable ``blue`` healthy, canary ``green`` failing half its
requests) and, for the Prometheus tests, a real Prometheus scraping the agent."""

from __future__ import annotations

import pytest

from integrations.local.process import start_agent
from tests.integrations.fleet_helpers import Control, fire
from tests.prometheus import run_prometheus

KEY = "api.analysis"


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    log = tmp_path_factory.mktemp("agent") / "agent.log"
    with start_agent(log_path=log) as agent:
        control = Control(agent)
        endpoint = control.create_target(KEY)
        control.ensure(KEY, "blue", "1.0", 1, {})
        control.ensure(KEY, "green", "2.0", 1, {"error_rate": 0.5, "latency_ms": 30})
        control.wait_ready(KEY, "blue", 1)
        control.wait_ready(KEY, "green", 1)
        control.set_weights(KEY, {"blue": 50, "green": 50})
        yield agent, control, endpoint
        control.close()


@pytest.fixture(scope="module")
def prometheus(fleet):
    agent, _, _ = fleet
    with run_prometheus(f"127.0.0.1:{agent.port}", token=agent.token) as url:
        yield url


def send(endpoint: str, count: int) -> None:
    fire(endpoint, count, concurrency=8)
