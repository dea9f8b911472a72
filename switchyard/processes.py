"""Start and stop the processes of a Switchyard installation on one machine.

Used by ``manage.py demo`` and by the end-to-end tests and benchmarks, so that what they run is
what users run: web (uvicorn), Celery worker and beat, the local fleet agent.
"""

from __future__ import annotations

import logging
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
logger = logging.getLogger("switchyard.processes")

RESTART_BACKOFF_FIRST = 1.0  # seconds before restarting a child that died
RESTART_BACKOFF_MAX = 30.0  # doubling per crash in a row, up to this
RESTART_STABLE_AFTER = 60.0  # a child that ran this long before dying starts the backoff again


def web_workers() -> int:
    """How many web processes to run: ``WEB_CONCURRENCY`` if set, else two per core (at least 2,
    at most 8). One process runs Python on one core at a time (the GIL) however many requests it
    has in flight (Django's ASGI handler gives each request a thread of its own for its sync
    code), and a request spends part of its time waiting on Postgres, so more processes than
    cores keep both busy: ``docs/serving.md`` has the figures."""
    return _positive(os.environ.get("WEB_CONCURRENCY")) or max(2, min(8, 2 * (os.cpu_count() or 1)))


def _positive(configured: str | None) -> int | None:
    """A setting's value if it is a positive whole number, else None (unset or nonsense)."""
    configured = (configured or "").strip()
    return int(configured) if configured.isdigit() and int(configured) > 0 else None


def web_command(port: int, host: str = "127.0.0.1", workers: int | None = None) -> list[str]:
    """The web server: uvicorn with ``workers`` processes (``web_workers()`` by default) sharing
    one listening socket; HTTP and WebSockets alike (the channel layer is Redis, so a WebSocket
    on one process hears events published by any)."""
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "switchyard.asgi:application",
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        str(workers or web_workers()),
        "--lifespan",
        "off",
        "--no-access-log",
        # WebSocket frames uncompressed: with per-message deflate every frame of a publish was
        # compressed once per connection (a dashboard's frames are ~0.8 KB), and each connection
        # kept a compressor of its own (docs/serving.md)
        "--ws-per-message-deflate",
        "false",
    ]


# the environment of the web processes on top of the supervisor's: a pool of database
# connections per process (see DATABASE_POOL_MAX in switchyard/settings.py)
WEB_ENV = {"DATABASE_POOL_MAX": "8"}


def http_threads() -> int:
    """Threads per HTTP (WSGI) process: ``WEB_THREADS``, else 8."""
    return _positive(os.environ.get("WEB_THREADS")) or 8


def http_command(
    port: int, host: str = "127.0.0.1", workers: int | None = None, threads: int | None = None
) -> list[str]:
    """Plain HTTP (no WebSockets): gunicorn's threaded workers (``gthread``) running
    ``switchyard.wsgi``, ``workers`` processes of ``threads`` threads each. A request runs on the
    thread that read it, start to end, with that thread's persistent database connection
    (``HTTP_ENV``). Not what production runs: ``bench/api.py --server wsgi`` compares it with
    ``web_command`` (``docs/serving.md``: about the same CPU per request)."""
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "switchyard.wsgi:application",
        "--bind",
        f"{host}:{port}",
        "--worker-class",
        "gthread",
        "--workers",
        str(workers or web_workers()),
        "--threads",
        str(threads or http_threads()),
        "--worker-tmp-dir",
        "/dev/shm" if os.path.isdir("/dev/shm") else "/tmp",
        "--graceful-timeout",
        "10",
    ]


# the HTTP (WSGI) processes' environment: one persistent connection per thread
HTTP_ENV = {"DATABASE_CONN_MAX_AGE": "600"}


def worker_command(
    concurrency: int = 2,
    queues: str = "priority,default",
    name: str = "worker",
    pool: str | None = None,
) -> list[str]:
    """A Celery worker consuming ``queues``. The demo and the compose file run two: ``default``
    (every forward tick) and ``priority`` (rollback and abort ticks), so a rollback never waits
    for a free process behind slow ticks.

    ``pool`` names Celery's pool and ``concurrency`` is then its size as given (the scale bench
    measures ``threads`` this way). Unnamed, the pool is ``worker_pool()`` and ``concurrency``
    counts processes' worth of work: a threads pool runs ``SWITCHYARD_WORKER_THREADS`` (8)
    threads for each."""
    size = concurrency
    if pool is None:
        pool = worker_pool()
        if pool == "threads":
            size = concurrency * worker_threads()
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
        str(size),
        "--pool",
        pool,
        "-l",
        "INFO",
        "--without-gossip",
        "--without-mingle",
        "-O",
        "fair",
        "-n",
        f"{name}@%h",
    ]


def worker_pool() -> str:
    """Celery's pool for the workers started here: ``SWITCHYARD_WORKER_POOL``, else threads. A
    tick mostly waits on I/O (the fleet, a cluster, Postgres), which threads overlap: 20
    canaries' tick lag p99 4.1 s with 2 prefork processes, 1.1 s with 2 x 8 threads
    (docs/serving.md). The crash-safety suite (worker kills mid-tick, lease take-over, broker
    restarts, chaos) passes on both; ``prefork`` is still there for work that needs a core."""
    return os.environ.get("SWITCHYARD_WORKER_POOL", "").strip() or "threads"


def worker_threads() -> int:
    return _positive(os.environ.get("SWITCHYARD_WORKER_THREADS")) or 8


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
    # name -> (argv, started at, crashes in a row, restart not before): children restarted by
    # ``restart_dead`` when they exit
    restartable: dict = field(default_factory=dict)
    restarts: dict = field(default_factory=dict)  # name -> how many times it was restarted
    child_env: dict = field(default_factory=dict)  # name -> its own variables (``start(env=)``)

    def start(
        self, name: str, argv: list[str], *, restart: bool = False, env: dict | None = None
    ) -> subprocess.Popen:
        """Start ``argv`` as child ``name`` (``env``: variables on top of the supervisor's, for
        this child only); with ``restart``, ``restart_dead`` brings it back whenever it exits
        (with backoff)."""
        if env:
            self.child_env[name] = dict(env)
        proc = self._spawn(name, argv)
        if restart:
            self.restartable[name] = [argv, time.monotonic(), 0, 0.0]
        return proc

    def restart_dead(self, now: float | None = None) -> list[str]:
        """Restart every restartable child that has exited and whose backoff is over (call it
        every second or so). A child that crashes again soon waits twice as long next time, up
        to ``RESTART_BACKOFF_MAX``; one that ran ``RESTART_STABLE_AFTER`` s starts afresh.
        Returns the names restarted now; each exit and restart is logged."""
        now = time.monotonic() if now is None else now
        restarted = []
        for entry in list(self.children):
            name, proc = entry
            policy = self.restartable.get(name)
            if policy is None or proc.poll() is None:
                continue
            argv, started_at, crashes, not_before = policy
            if not not_before:  # just noticed
                crashes = 0 if now - started_at >= RESTART_STABLE_AFTER else crashes
                delay = min(RESTART_BACKOFF_MAX, RESTART_BACKOFF_FIRST * 2**crashes)
                policy[2], policy[3] = crashes + 1, now + delay
                logger.warning(
                    "%s exited with code %s after %.1fs; restarting it in %.1fs",
                    name,
                    proc.returncode,
                    now - started_at,
                    delay,
                )
                continue
            if now < not_before:
                continue
            _signal_group(proc, signal.SIGKILL)  # what is left of its process group
            self.children.remove(entry)
            self._spawn(name, argv)
            policy[1], policy[3] = now, 0.0
            self.restarts[name] = self.restarts.get(name, 0) + 1
            logger.warning("%s restarted (restart %d)", name, self.restarts[name])
            restarted.append(name)
        return restarted

    def _spawn(self, name: str, argv: list[str]) -> subprocess.Popen:
        out = None
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            out = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 -- closed with the child
        # children import this checkout's code, whatever an installed copy says (a worktree, or a
        # venv installed from another clone)
        env = {**self.env, **self.child_env.get(name, {})}
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
        if out is not None:
            out.close()  # the child has its own copy
        self.children.append((name, proc))
        return proc

    def check(self) -> list[str]:
        """Names of children that have exited (and are not restarted by ``restart_dead``)."""
        return [
            name
            for name, proc in self.children
            if proc.poll() is not None and name not in self.restartable
        ]

    def stop(self, timeout: float = 10.0) -> None:
        self.restartable.clear()
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
        """SIGKILL a child and its whole process group at once (a crash, for failure tests). A
        restartable child is left to ``restart_dead``; any other is forgotten."""
        for entry in list(self.children):
            child_name, proc = entry
            if child_name == name:
                _signal_group(proc, signal.SIGKILL)
                proc.wait()
                if name not in self.restartable:
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


def wait_http(url: str, timeout: float = 60.0) -> None:
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
