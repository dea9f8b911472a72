"""A stack for the reconcile loop's failure tests: its OWN Redis server (a ``redis-server`` this
test starts on a free loopback port, so it can be stopped and restarted -- never the machine's
shared one), a fleet agent, Celery beat with a 1 s sweep, and as many workers as the test asks
for, all sharing this test session's database. What this process enqueues goes to the session's
shared Redis and is never seen by these workers: they get every tick from the sweep (each second)
-- the harsh case, as if each message were lost -- and no global broker setting of this process
is switched for a test (which could strand the tests that run after it)."""

from __future__ import annotations

import os
import subprocess
import time
from contextlib import contextmanager

import redis

from integrations.local.ports import free_port
from integrations.local.process import start_agent
from integrations.local.slow_proxy import SlowProxy
from switchyard import processes
from switchyard.embedded_redis import _die_with_parent, redis_executable
from tests.e2e.conftest import LOG_DIR, Stack
from tests.stack import child_database_url


class RedisServer:
    """A throwaway redis-server on 127.0.0.1:``port`` keeping nothing on disk (like the compose
    file's): a restart loses every queued message, which is the harsh case."""

    def __init__(self, port: int | None = None):
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None
        self.restarts = 0

    def start(self) -> RedisServer:
        self.process = subprocess.Popen(
            [
                redis_executable(),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--loglevel",
                "warning",
            ],
            stdout=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
        )
        client = redis.Redis.from_url(self.url, socket_timeout=0.5)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if client.ping():
                    return self
            except redis.RedisError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server on {self.port} did not answer")

    def stop(self) -> None:
        proc, self.process = self.process, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            proc.wait(5)

    def restart(self, down_for: float = 1.0) -> None:
        self.stop()
        time.sleep(down_for)
        self.start()
        self.restarts += 1


@contextmanager
def loop_stack(
    settings, *, workers=("worker",), queues="priority,default", log_name="loop", slow=None
):
    """``slow``: seconds every change to a target is held on its way to the fleet agent (a
    slowed target, ``integrations.local.slow_proxy``) for the workers; this process talks to the
    agent directly."""
    log_dir = LOG_DIR / log_name
    log_dir.mkdir(parents=True, exist_ok=True)
    server = RedisServer().start()
    agent = start_agent(token=settings.FLEET_TOKEN, log_path=log_dir / "fleet.log")
    settings.FLEET_URL = agent.url
    proxy = SlowProxy(agent.url, delay=slow).__enter__() if slow else None
    env = dict(os.environ)
    env.update(
        DATABASE_URL=child_database_url(),
        REDIS_URL=server.url,
        FLEET_URL=proxy.url if proxy else agent.url,
        FLEET_TOKEN=settings.FLEET_TOKEN,
        SECRET_KEY=settings.SECRET_KEY,
        SWEEP_INTERVAL_SECONDS="1",
    )
    supervisor = processes.Supervisor(env=env, log_dir=log_dir)
    try:
        for name in workers:
            supervisor.start(name, processes.worker_command(concurrency=2, queues=queues))
        supervisor.start("beat", processes.beat_command(log_dir / "beat-schedule"))
        stack = Stack(agent, supervisor)
        stack.redis = server
        stack.log_dir = log_dir
        stack.proxy = proxy
        yield stack
    finally:
        supervisor.stop()
        if proxy is not None:
            proxy.__exit__(None, None, None)
        agent.stop()
        server.stop()


def holder(stack, deployment_id) -> str | None:
    """The supervisor child (worker name) whose pool process holds the deployment's lease."""
    from releases.models import Deployment

    owner = Deployment.objects.filter(pk=deployment_id).values_list("lease_owner", flat=True)[0]
    if not owner:
        return None
    pid = int(owner.split(":")[-2])
    try:
        group = os.getpgid(pid)
    except ProcessLookupError:
        return None
    return next((name for name, proc in stack.supervisor.children if proc.pid == group), None)
