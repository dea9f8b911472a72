"""Start and stop the processes of a Switchyard installation on one machine.

Used by ``manage.py demo`` and by the end-to-end tests and benchmarks, so that what they run is
what users run: web (uvicorn), Celery worker and beat, the local fleet agent.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from switchyard.embedded_redis import _die_with_parent

BASE_DIR = Path(__file__).resolve().parent.parent


def web_command(port: int, host: str = "127.0.0.1") -> list[str]:
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "switchyard.asgi:application",
        "--host",
        host,
        "--port",
        str(port),
        "--lifespan",
        "off",
        "--no-access-log",
    ]


def worker_command(concurrency: int = 2, queues: str = "priority,default") -> list[str]:
    return [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "switchyard",
        "worker",
        "-Q",
        queues,
        "-c",
        str(concurrency),
        "-l",
        "INFO",
        "--without-gossip",
        "--without-mingle",
        "-O",
        "fair",
    ]


def beat_command(schedule_path: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "switchyard",
        "beat",
        "-l",
        "WARNING",
        "-s",
        str(schedule_path),
    ]


def fleet_command(port: int, token: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "integrations.local.agent",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--token",
        token,
    ]


@dataclass
class Supervisor:
    """A group of child processes that stop together (and die with this process)."""

    env: dict = field(default_factory=lambda: dict(os.environ))
    log_dir: Path | None = None
    children: list[tuple[str, subprocess.Popen]] = field(default_factory=list)

    def start(self, name: str, argv: list[str]) -> subprocess.Popen:
        out = None
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            out = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 -- closed with the child
        # children import this checkout's code, whatever an installed copy says (a worktree, or a
        # venv installed from another clone)
        env = dict(self.env)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(BASE_DIR), env.get("PYTHONPATH", "")) if p
        )
        proc = subprocess.Popen(
            argv,
            cwd=BASE_DIR,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT if out else None,
            preexec_fn=_die_with_parent,
            start_new_session=True,  # its own process group: stop() and kill() reach its children
        )
        self.children.append((name, proc))
        return proc

    def check(self) -> list[str]:
        """Names of children that have exited."""
        return [name for name, proc in self.children if proc.poll() is not None]

    def stop(self, timeout: float = 10.0) -> None:
        for _, proc in reversed(self.children):
            _signal_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for _, proc in reversed(self.children):
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(proc, signal.SIGKILL)
                proc.wait()
            _signal_group(proc, signal.SIGKILL)  # stragglers, e.g. a worker's pool processes
        self.children.clear()

    def kill(self, name: str) -> None:
        """SIGKILL a child and its whole process group at once (a crash, for failure tests)."""
        for entry in list(self.children):
            child_name, proc = entry
            if child_name == name:
                _signal_group(proc, signal.SIGKILL)
                proc.wait()
                self.children.remove(entry)

    def __enter__(self) -> Supervisor:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def _signal_group(proc: subprocess.Popen, signum: int) -> None:
    try:
        os.killpg(proc.pid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def wait_http(url: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1.0).status_code < 500:
                return
        except httpx.HTTPError as exc:
            last = exc
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer within {timeout}s ({last})")
