"""A real fleet agent with one target (stable ``blue`` healthy, canary ``green`` failing half its
requests) and, for the Prometheus tests, a real Prometheus scraping the agent."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
import pytest

from integrations.local.ports import free_port
from integrations.local.process import start_agent
from tests.integrations.fleet_helpers import Control, fire

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
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip(
            "the prometheus binary is absent: `apt-get install -y prometheus` (.ci/run does)"
        )
    agent, _, _ = fleet
    port = free_port()
    with tempfile.TemporaryDirectory() as folder:
        config = Path(folder) / "prometheus.yml"
        config.write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            "scrape_configs:\n"
            "  - job_name: fleet\n"
            "    scrape_interval: 1s\n"
            f"    authorization: {{credentials: {agent.token}}}\n"
            f"    static_configs: [{{targets: ['127.0.0.1:{agent.port}']}}]\n"
        )
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={folder}/data",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=open(Path(folder) / "prometheus.log", "wb"),  # noqa: SIM115
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                try:
                    if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.1)
            else:
                raise AssertionError("Prometheus did not become ready")
            yield url
        finally:
            process.terminate()
            process.wait(10)


def send(endpoint: str, count: int) -> None:
    fire(endpoint, count, concurrency=8)
