"""Start a fleet agent as a child process (tests, benchmarks and the demo use this).

with start_agent() as agent:
    LocalTarget("api.dev", {}, fleet_url=agent.url, token=agent.token)
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from integrations.local.ports import free_port

PROJECT_ROOT = str(Path(__file__).resolve().parents[2])


@dataclass
class AgentProcess:
    url: str
    token: str
    port: int
    popen: subprocess.Popen[bytes]
    log_path: str | None = None
    _log: IO[bytes] | None = field(default=None, repr=False)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM, wait up to ``timeout`` seconds, then SIGKILL; the exit status."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        if self._log is not None:
            self._log.close()
            self._log = None
        return self.popen.returncode

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path or not os.path.exists(self.log_path):
            return ""
        with open(self.log_path, errors="replace") as fh:
            return "".join(fh.readlines()[-lines:])

    def __enter__(self) -> AgentProcess:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def _answering(url: str, pid: int) -> bool:
    """Whether the agent with this pid (not some other process on the port) answers /healthz."""
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=1) as resp:
            return resp.status == 200 and json.loads(resp.read()).get("pid") == pid
    except (urllib.error.URLError, OSError, ValueError):
        return False


def start_agent(
    port: int | None = None,
    token: str | None = None,
    *,
    env: dict[str, str] | None = None,
    log_path: str | os.PathLike[str] | None = None,
    state_dir: str | os.PathLike[str] | None = None,
    ready_timeout: float = 10.0,
    extra_args: Sequence[str] = (),
) -> AgentProcess:
    """Run ``python -m integrations.local.agent`` and wait until ``/healthz`` answers."""
    port = port or free_port()
    token = token or secrets.token_urlsafe(24)
    child_env = dict(os.environ if env is None else env)
    child_env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [PROJECT_ROOT, child_env.get("PYTHONPATH")])
    )
    argv = [sys.executable, "-m", "integrations.local.agent", "--host", "127.0.0.1"]
    argv += ["--port", str(port)]
    child_env["SWITCHYARD_FLEET_TOKEN"] = token  # not on the command line, where ps shows it
    if state_dir:
        argv += ["--state-dir", os.fspath(state_dir)]
    argv += list(extra_args)
    log_path = os.fspath(log_path) if log_path else None
    log = open(log_path, "ab") if log_path else None  # noqa: SIM115 (closed by stop())
    popen = subprocess.Popen(
        argv,
        env=child_env,
        cwd=PROJECT_ROOT,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT if log else None,
    )
    agent = AgentProcess(f"http://127.0.0.1:{port}", token, port, popen, log_path, log)
    deadline = time.monotonic() + ready_timeout
    while time.monotonic() < deadline:
        if popen.poll() is not None:
            agent.stop()
            raise RuntimeError(
                f"fleet agent exited with status {popen.returncode} before it was ready\n"
                + agent.log_tail()
            )
        if _answering(agent.url, popen.pid):
            return agent
        time.sleep(0.05)
    agent.stop()
    raise RuntimeError(f"fleet agent did not answer /healthz within {ready_timeout:g}s\n")
