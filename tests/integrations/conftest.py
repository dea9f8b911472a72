"""Fixtures for the tests that drive a real fleet agent process: one agent per test module (its
log in the module's temp dir) and a control-API client for it."""

from __future__ import annotations

import pytest

from integrations.local.process import start_agent
from tests.integrations.fleet_helpers import Control


@pytest.fixture(scope="module")
def agent(tmp_path_factory):
    log_path = tmp_path_factory.mktemp("fleet") / "agent.log"
    with start_agent(log_path=str(log_path)) as agent:
        yield agent


@pytest.fixture(scope="module")
def control(agent):
    control = Control(agent)
    yield control
    control.close()
