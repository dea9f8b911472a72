"""README's first hour, run as written and in order: the CI flow's shell block (token, curl, CLI, a
canary, a rollback) in bash against a real stack (uvicorn, a Celery worker, the fleet agent) on
this test session's database; and a ``manage.py`` command pointed at a database without
Switchyard's tables says what to do instead of a traceback.

The only change made to the block is the server's address (``SWITCHYARD_URL``): the test's web
server listens on a free port, not 8000."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

from integrations.local.ports import free_port
from releases.models import Deployment, State, Target
from switchyard import processes
from tests import factories
from tests.e2e.conftest import LOG_DIR

pytestmark = pytest.mark.e2e

ROOT = Path(settings.BASE_DIR)
README = ROOT / "README.md"


def shell_block(heading: str) -> str:
    """The first ```sh block after ``heading`` in README.md."""
    text = README.read_text(encoding="utf-8")
    after = text[text.index(heading) :]
    match = re.search(r"```sh\n(.*?)```", after, re.S)
    assert match, f"no sh block after {heading!r}"
    return match.group(1)


@pytest.fixture
def web(stack):
    """The stack's web server (uvicorn) on a free port; yields its URL."""
    port = free_port()
    supervisor = processes.Supervisor(env=stack.supervisor.env, log_dir=LOG_DIR)
    supervisor.start("web", processes.web_command(port))
    url = f"http://127.0.0.1:{port}"
    try:
        processes.wait_http(f"{url}/login/", timeout=30)
        yield url
    finally:
        supervisor.stop()


def test_the_ci_flow_runs_as_written_in_order(stack, web):
    # what `make demo` has that the block uses: the admin user, api in dev/staging/prod
    factories.make_user("admin")
    api = factories.make_service("api", team="payments")
    for env in ("dev", "staging", "prod"):
        factories.make_target(api, factories.make_environment(env))
    block = shell_block("## The CI flow")
    assert "http://127.0.0.1:8000" in block
    script = block.replace("http://127.0.0.1:8000", web)

    done = subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", script],
        cwd=ROOT,
        env={**stack.supervisor.env, "PATH": os.environ["PATH"]},
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, (done.stdout, done.stderr)
    out = done.stdout + done.stderr
    assert "release api 1.2.0 already exists (same body)" in out, out
    assert "already started: deployment #" in out, out

    staging = Target.objects.get(service=api, environment__slug="staging")
    rows = list(Deployment.objects.filter(target=staging).order_by("id"))
    # one deployment of 1.2.0 (curl's; the CLI followed it), the canary, and its rollback
    assert [(d.release.version, d.strategy_kind) for d in rows[:2]] == [
        ("1.2.0", "rolling"),
        ("1.3.0", "canary"),
    ], rows
    first, canary, back = rows
    assert first.state == State.SUCCEEDED and canary.state == State.SUCCEEDED
    assert back.rollback_of_id == canary.pk and back.release.version == "1.2.0"
    stack.wait_for(
        lambda: Deployment.objects.get(pk=back.pk).state == State.SUCCEEDED,
        timeout=90,
        what="the rollback to 1.2.0",
    )


def test_a_command_on_a_database_without_tables_says_what_to_do(tmp_path):
    empty = tmp_path / "elsewhere.sqlite3"
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{empty}"}
    done = subprocess.run(
        [sys.executable, "manage.py", "token", "create", "--user", "admin", "--name", "ci"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr, done.stderr
    assert f"DATABASE_URL=sqlite:///{empty} has no Switchyard tables" in done.stderr
    assert "manage.py migrate" in done.stderr and "server's DATABASE_URL" in done.stderr
