"""The sample app's instances are forked from the fleet's zygote, which has already imported it.

Exec'ing ``python -m integrations.local.sample_app`` costs ~0.3 s of CPU per instance (aiohttp's
import); 100 canaries starting at once made that a burst of both cores for seconds
(docs/serving.md). These tests run the real agent, the real zygote and the real sample app."""

from __future__ import annotations

import asyncio
import os
import signal
import sys

import httpx
import psutil
import pytest

from integrations.local import zygote
from integrations.local.ports import free_port
from integrations.local.process import start_agent
from tests.integrations.fleet_helpers import Control, wait_until

pytestmark = pytest.mark.timeout(60)

SAMPLE = [sys.executable, "-m", "integrations.local.sample_app"]


def _argv(port: int, *extra: str) -> list[str]:
    return [*SAMPLE, "--port", str(port), "--version", "1.0.0", *extra]


async def _serving(port: int) -> dict:
    async with httpx.AsyncClient() as client:
        for _ in range(500):
            try:
                return (await client.get(f"http://127.0.0.1:{port}/x")).json()
            except httpx.TransportError:
                await asyncio.sleep(0.01)
    raise AssertionError(f"nothing answered on {port}")


def test_the_agent_forks_sample_instances_from_one_zygote_and_execs_commands(tmp_path):
    agent = start_agent(log_path=str(tmp_path / "agent.log"), state_dir=str(tmp_path / "state"))
    try:
        control = Control(agent)
        control.create_target("z")
        control.ensure("z", "blue", "1.0", 2)
        forked = control.wait_ready("z", "blue", 2)
        control.create_target("own")
        command = {"command": [*SAMPLE, "--port", "{port}", "--version", "own"]}
        control.ensure("own", "blue", "own", 1, artifact=command)
        (execd,) = control.wait_ready("own", "blue", 1)
        control.close()

        parents = {psutil.Process(i["pid"]).ppid() for i in forked}
        assert len(parents) == 1, "every sample instance comes from the one zygote"
        (parent,) = parents
        assert "integrations.local.zygote" in " ".join(psutil.Process(parent).cmdline())
        assert psutil.Process(parent).ppid() == agent.pid
        # each child leads a session of its own, as an exec'd instance does
        assert all(os.getsid(i["pid"]) == i["pid"] for i in forked)
        # the team's own command is exec'd by the agent, even when it runs the sample app
        assert psutil.Process(execd["pid"]).ppid() == agent.pid
        answers = {httpx.get(f"http://{i['address']}/x").json()["instance"] for i in forked}
        assert answers == {i["id"] for i in forked}, "each child has its own environment"
        logs = sorted(os.listdir(tmp_path / "state" / "logs"))
        assert "zygote.log" in logs and any(name.startswith("z.blue-") for name in logs)
    finally:
        assert agent.stop() == 0


def test_a_forked_instance_tells_its_exit_status():
    async def main():
        z = zygote.Zygote()
        env = dict(os.environ)
        try:
            ports = [free_port(), free_port()]
            calm = await z.fork(_argv(ports[0]), env=env, cwd=None, log=None)
            killed = await z.fork(_argv(ports[1]), env=env, cwd=None, log=None)
            await asyncio.gather(*(_serving(p) for p in ports))
            bad = await z.fork(
                _argv(free_port(), "--config", "{not json"), env=env, cwd=None, log=None
            )
            calm.send_signal(signal.SIGTERM)
            killed.send_signal(signal.SIGKILL)
            codes = await asyncio.gather(calm.wait(), killed.wait(), bad.wait())
            assert not z._children, "an exited child leaves nothing behind in the agent"
            return codes
        finally:
            await z.close()

    # SIGTERM: finished in flight, exit 0; SIGKILL: the signal; bad --config: argparse's 2
    assert asyncio.run(main()) == [0, -signal.SIGKILL, 2]


def test_a_dead_zygote_takes_its_children_and_the_next_fork_starts_another(tmp_path):
    async def main():
        z = zygote.Zygote(str(tmp_path))
        env = dict(os.environ)
        try:
            port = free_port()
            first = await z.fork(_argv(port), env=env, cwd=None, log=str(tmp_path / "a.log"))
            await _serving(port)
            old = z.pid
            os.kill(old, signal.SIGKILL)
            status = await asyncio.wait_for(first.wait(), 10)
            wait_until(lambda: not psutil.pid_exists(first.pid), timeout=5, what="child to die")
            port = free_port()
            second = await z.fork(_argv(port), env=env, cwd=None, log=str(tmp_path / "b.log"))
            answer = await _serving(port)
            return status, old, z.pid, answer, second
        finally:
            await z.close()

    status, old, new, answer, second = asyncio.run(main())
    assert status == -signal.SIGKILL
    assert new != old and answer["version"] == "1.0.0"
    assert second.returncode == -signal.SIGKILL  # closing the zygote ends its children
    assert "version 1.0.0 listening" in (tmp_path / "a.log").read_text()  # its stderr


def test_without_the_zygote_every_instance_is_execd(tmp_path, monkeypatch):
    monkeypatch.setenv("SWITCHYARD_FLEET_ZYGOTE", "0")
    agent = start_agent(log_path=str(tmp_path / "agent.log"))
    try:
        control = Control(agent)
        control.create_target("x")
        control.ensure("x", "blue", "1.0", 1)
        (inst,) = control.wait_ready("x", "blue", 1)
        control.close()
        assert psutil.Process(inst["pid"]).ppid() == agent.pid
    finally:
        assert agent.stop() == 0


def test_only_this_interpreter_running_the_sample_app_is_forkable():
    assert zygote.forkable([*SAMPLE, "--port", "1"])
    assert not zygote.forkable(["python3", "-m", "integrations.local.sample_app"])
    assert not zygote.forkable([sys.executable, "-m", "myapp"])
    assert not zygote.forkable(["/usr/bin/env"])
