"""The stack the benchmarks drive: a fresh database, the fleet agent, a Celery worker and the
web server, all on loopback; a small REST client; percentile helpers.

Uses DATABASE_URL / REDIS_URL when set (a database named <name>_bench is created beside it),
otherwise a SQLite file and an embedded Redis under var/bench/.
"""

from __future__ import annotations

import math
import os
import shutil
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from integrations.local.traffic import Traffic, failures, settled_after  # noqa: E402
from switchyard import processes  # noqa: E402
from switchyard.embedded_redis import EmbeddedRedis  # noqa: E402

TERMINAL = {"succeeded", "failed", "rolled_back", "aborted", "rejected"}
FAST_HEALTH = {"path": "/health", "interval": "200ms", "healthy_threshold": 2}
RECREATE = {"kind": "recreate", "replicas": 1, "health": FAST_HEALTH}
PAUSED_CANARY = {  # waits at 50% for a person: something to abort or roll back
    "kind": "canary",
    "stable_replicas": 1,
    "steps": [{"set_weight": 50}, {"pause": {}}],
    "health": FAST_HEALTH,
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


class Api:
    def __init__(self, base: str, token: str):
        self.client = httpx.Client(
            base_url=f"{base}/api/v1", timeout=10, headers={"Authorization": f"Bearer {token}"}
        )

    def __call__(self, method: str, path: str, body=None) -> dict:
        response = self.client.request(method, path, json=body)
        if response.status_code >= 400:
            raise RuntimeError(f"{method} {path}: {response.status_code} {response.text}")
        return response.json()

    def deploy(self, service: str, env: str, version: str, strategy: dict) -> dict:
        body = {"service": service, "environment": env, "version": version, "strategy": strategy}
        return self("POST", "/deployments", body)

    def wait(self, deployment_id: int, states=TERMINAL, timeout: float = 120) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            d = self("GET", f"/deployments/{deployment_id}")
            if d["state"] in states:
                return d
            time.sleep(0.05)
        raise TimeoutError(f"deployment {deployment_id} not in {states} after {timeout}s")


def _environment(var: Path) -> tuple[dict, EmbeddedRedis | None]:
    env = dict(os.environ)
    env["SWITCHYARD_VAR_DIR"] = str(var)
    redis = None
    if env.get("DATABASE_URL", "").startswith("postgres"):
        parts = urlsplit(env["DATABASE_URL"])
        name = parts.path.lstrip("/") + "_bench"
        host = ["-h", parts.hostname or "127.0.0.1", "-U", parts.username or "postgres"]
        subprocess.run(["dropdb", "--if-exists", *host, name], check=False)
        subprocess.run(["createdb", *host, name], check=True)
        env["DATABASE_URL"] = urlunsplit(parts._replace(path=f"/{name}"))
    else:
        env["DATABASE_URL"] = f"sqlite:///{var / 'bench.sqlite3'}"
    if not env.get("REDIS_URL"):
        redis = EmbeddedRedis(var / "redis.sock").start()
        env["REDIS_URL"] = redis.url
    env.setdefault("SECRET_KEY", "bench-only-secret")
    env["FLEET_TOKEN"] = "bench-fleet-token"
    env["FLEET_URL"] = f"http://127.0.0.1:{free_port()}"
    env["SWEEP_INTERVAL_SECONDS"] = "2"
    return env, redis


def _manage(env: dict, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout


def bootstrap(env: dict) -> str:
    """Migrate a fresh database, make the ``bench`` superuser; its API token."""
    _manage(env, "migrate", "--verbosity", "0")
    _manage(
        env,
        "shell",
        "-c",
        "from django.contrib.auth.models import User;"
        "User.objects.create_superuser('bench', 'b@example.com', 'bench')",
    )
    token = _manage(env, "token", "create", "--user", "bench", "--name", "bench")
    return token.strip().splitlines()[-1]


def start_fleet(supervisor: processes.Supervisor, env: dict) -> None:
    supervisor.start(
        "fleet", processes.fleet_command(urlsplit(env["FLEET_URL"]).port, env["FLEET_TOKEN"])
    )
    processes.wait_http(f"{env['FLEET_URL']}/healthz")


def start_web(supervisor: processes.Supervisor, env: dict | None = None) -> str:
    """The web server on a free port, up; its base URL."""
    web_port = free_port()
    supervisor.start("web", processes.web_command(web_port), env=env)
    base = f"http://127.0.0.1:{web_port}"
    processes.wait_http(f"{base}/login/")
    return base


@contextmanager
def stack(name: str, *, workers: int = 2, threads: int | None = None):
    """Yield an Api client for a fresh installation; stop everything afterwards. The worker:
    ``workers`` worker processes of ``threads`` threads each (by default what production runs:
    ``processes.worker_pool()``, 8 threads), or with ``threads=0`` one Celery worker with
    ``workers`` prefork pool processes."""
    if threads is None:
        threads = processes.worker_threads() if processes.worker_pool() == "threads" else 0
    var = ROOT / "var" / "bench" / name
    shutil.rmtree(var, ignore_errors=True)
    var.mkdir(parents=True)
    env, redis = _environment(var)
    supervisor = processes.Supervisor(env=env, log_dir=var / "logs")
    try:
        token = bootstrap(env)
        start_fleet(supervisor, env)
        # every queue the product uses: with no notify consumer each deployment event's
        # fan-out task would pile up in Redis (the soak saw the notify list grow)
        queues = "priority,default,notify"
        if threads:
            for n in range(workers):
                command = processes.worker_command(
                    concurrency=threads, queues=queues, name=f"worker{n}", pool="threads"
                )
                supervisor.start(f"worker{n}", command)
        else:
            command = processes.worker_command(concurrency=workers, queues=queues, pool="prefork")
            supervisor.start("worker", command)
        supervisor.start("beat", processes.beat_command(var / "beat-schedule"))
        base = start_web(supervisor, processes.WEB_ENV)
        print(f"stack up: {base} (logs in {var / 'logs'})", flush=True)
        api = Api(base, token)
        api.redis_url = env["REDIS_URL"]  # the stack's own (an embedded one when none is set)
        # the Postgres database's name ("" on SQLite): a bench can count its backends' CPU
        url = env["DATABASE_URL"]
        api.database = urlsplit(url).path.lstrip("/") if url.startswith("postgres") else ""
        yield api
    finally:
        supervisor.stop()
        if redis is not None:
            redis.stop()


def command_latency(
    api: Api, slug: str, deployment_id: int, command: str, timeout: float = 120
) -> tuple[float, int, dict]:
    """Send ``command`` (abort, rollback) to ``deployment_id`` under 100 req/s of traffic through
    the prod router of ``slug``: seconds from the API's answer until every request is answered
    by 1.0.0 (inf if never), the failed requests, and the deployment as it ended."""
    endpoint = api("GET", f"/services/{slug}/targets/prod")["endpoint"]
    with Traffic(endpoint, rate=100, threads=2) as traffic:
        time.sleep(0.5)
        api("POST", f"/deployments/{deployment_id}/{command}", {"reason": "bench"})
        returned = time.monotonic()
        final = api.wait(deployment_id, timeout=timeout)
        time.sleep(1.0)
        samples = traffic.snapshot()
    value = settled_after(samples, returned, "1.0.0")
    return (value if value is not None else math.inf), len(failures(samples)), final


def create_service(api: Api, slug: str, versions: list[str], artifact: dict | None = None) -> str:
    """A service with one prod target on the local fleet; returns the router endpoint."""
    api("POST", "/services", {"slug": slug, "name": slug.title()})
    try:
        api("POST", "/environments", {"slug": "prod", "name": "Prod", "order": 1})
    except RuntimeError:
        pass  # already there
    api("PUT", f"/services/{slug}/targets/prod", {"provider": "local", "config": {}})
    for version in versions:
        api(
            "POST",
            f"/services/{slug}/releases",
            {"version": version, "artifact": artifact or {"sample": {"latency_ms": 5}}},
        )
    return slug
