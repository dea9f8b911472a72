"""A real stack for end-to-end tests: a fleet agent and a Celery worker as separate processes,
sharing this test session's database and Redis."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.conf import settings

from integrations.local.process import start_agent
from switchyard import processes
from tests.stack import child_database_url, wait_for

LOG_DIR = Path(settings.BASE_DIR) / "test-output" / "e2e"


class Stack:
    def __init__(self, agent, supervisor):
        self.agent = agent
        self.supervisor = supervisor

    def wait_for(self, predicate, timeout=60.0, interval=0.1, what="condition"):
        return wait_for(
            predicate, self.supervisor, LOG_DIR, timeout=timeout, interval=interval, what=what
        )


@pytest.fixture
def stack(transactional_db, settings):
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    token = settings.FLEET_TOKEN
    agent = start_agent(token=token, log_path=LOG_DIR / "fleet.log")
    settings.FLEET_URL = agent.url
    env = dict(os.environ)
    env.update(
        DATABASE_URL=child_database_url(),
        REDIS_URL=settings.REDIS_URL,
        FLEET_URL=agent.url,
        FLEET_TOKEN=token,
        SECRET_KEY=settings.SECRET_KEY,
    )
    supervisor = processes.Supervisor(env=env, log_dir=LOG_DIR)
    supervisor.start("worker", processes.worker_command(concurrency=2))
    try:
        yield Stack(agent, supervisor)
    finally:
        supervisor.stop()
        agent.stop()
