"""Rolling deploy + rollback under load, through the real stack, with figures printed.

    .venv/bin/python bench/rolling.py [--cycles 3] [--rate 200]

Starts (on loopback only) a fresh database, the fleet agent, a Celery worker and the web server,
registers a service through the REST API, then per cycle: deploys a new release with a rolling
strategy (4 replicas, batches of 1) while a client sends open-loop traffic through the router, and
rolls it back. Prints requests sent, failed requests (non-2xx or connection errors), rollout
durations, and the rollback latency as the client sees it: from the rollback API call returning
to the first moment after which every new request is answered by the old version.

Uses DATABASE_URL / REDIS_URL when set (a database named *_bench is created next to it),
otherwise a SQLite file and an embedded Redis under var/bench/.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from integrations.local.traffic import Traffic, failures, settled_after  # noqa: E402
from switchyard import processes  # noqa: E402
from switchyard.embedded_redis import EmbeddedRedis  # noqa: E402

TERMINAL = {"succeeded", "failed", "rolled_back", "aborted", "rejected"}
STRATEGY = {
    "kind": "rolling",
    "replicas": 4,
    "batch_size": 1,
    "max_surge": 1,
    "max_unavailable": 0,
    "min_ready": "300ms",
    "progress_deadline": "60s",
    "health": {"path": "/health", "interval": "200ms", "healthy_threshold": 2},
}


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bench_env(var: Path) -> tuple[dict, EmbeddedRedis | None]:
    env = dict(os.environ)
    env["SWITCHYARD_VAR_DIR"] = str(var)
    redis = None
    if env.get("DATABASE_URL", "").startswith("postgres"):
        parts = urlsplit(env["DATABASE_URL"])
        name = parts.path.lstrip("/") + "_bench"
        subprocess.run(
            [
                "dropdb",
                "--if-exists",
                "-h",
                parts.hostname or "127.0.0.1",
                "-U",
                parts.username or "postgres",
                name,
            ],
            check=False,
        )
        subprocess.run(
            [
                "createdb",
                "-h",
                parts.hostname or "127.0.0.1",
                "-U",
                parts.username or "postgres",
                name,
            ],
            check=True,
        )
        env["DATABASE_URL"] = urlunsplit(parts._replace(path=f"/{name}"))
    else:
        env["DATABASE_URL"] = f"sqlite:///{var / 'bench.sqlite3'}"
    if not env.get("REDIS_URL"):
        redis = EmbeddedRedis(var / "redis.sock").start()
        env["REDIS_URL"] = redis.url
    env.setdefault("SECRET_KEY", "bench-only-secret")
    env["FLEET_TOKEN"] = "bench-fleet-token"
    env["FLEET_URL"] = f"http://127.0.0.1:{free_port()}"
    return env, redis


def manage(env: dict, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout


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

    def wait(self, deployment_id: int, timeout: float = 120) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            d = self("GET", f"/deployments/{deployment_id}")
            if d["state"] in TERMINAL:
                return d
            time.sleep(0.1)
        raise TimeoutError(f"deployment {deployment_id} did not finish in {timeout}s")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=3)
    parser.add_argument("--rate", type=float, default=200.0, help="client requests/s")
    args = parser.parse_args()

    var = ROOT / "var" / "bench"
    shutil.rmtree(var, ignore_errors=True)
    var.mkdir(parents=True)
    env, redis = bench_env(var)
    web_port = free_port()
    supervisor = processes.Supervisor(env=env, log_dir=var / "logs")
    try:
        manage(env, "migrate", "--verbosity", "0")
        manage(
            env,
            "shell",
            "-c",
            "from django.contrib.auth.models import User;"
            "User.objects.create_superuser('bench', 'b@example.com', 'bench')",
        )
        token = manage(env, "token", "create", "--user", "bench", "--name", "bench").strip()
        token = token.splitlines()[-1]
        supervisor.start(
            "fleet", processes.fleet_command(urlsplit(env["FLEET_URL"]).port, env["FLEET_TOKEN"])
        )
        supervisor.start("worker", processes.worker_command(concurrency=2))
        supervisor.start("web", processes.web_command(web_port))
        base = f"http://127.0.0.1:{web_port}"
        processes.wait_http(f"{env['FLEET_URL']}/healthz")
        processes.wait_http(f"{base}/login/")
        api = Api(base, token)
        api("POST", "/services", {"slug": "bench", "name": "Bench"})
        api("POST", "/environments", {"slug": "prod", "name": "Prod", "order": 1})
        api("PUT", "/services/bench/targets/prod", {"provider": "local", "config": {}})
        versions = ["1.0.0"] + [f"1.{i + 1}.0" for i in range(args.cycles)]
        for version in versions:
            api(
                "POST",
                "/services/bench/releases",
                {"version": version, "artifact": {"sample": {"latency_ms": 5}}},
            )
        first = api(
            "POST",
            "/deployments",
            {"service": "bench", "environment": "prod", "version": "1.0.0", "strategy": STRATEGY},
        )
        api.wait(first["id"])
        endpoint = api("GET", "/services/bench/targets/prod")["endpoint"]

        rollout_s, rollback_s, settle_s, call_ms = [], [], [], []
        with Traffic(endpoint, rate=args.rate, threads=8) as traffic:
            time.sleep(1)
            for version in versions[1:]:
                started = time.monotonic()
                d = api(
                    "POST",
                    "/deployments",
                    {
                        "service": "bench",
                        "environment": "prod",
                        "version": version,
                        "strategy": STRATEGY,
                    },
                )
                assert api.wait(d["id"])["state"] == "succeeded"
                rollout_s.append(time.monotonic() - started)
                time.sleep(0.5)
                called = time.monotonic()
                back = api("POST", f"/deployments/{d['id']}/rollback", {"reason": "bench"})
                returned = time.monotonic()
                call_ms.append(1000 * (returned - called))
                assert api.wait(back["id"])["state"] == "succeeded"
                rollback_s.append(time.monotonic() - returned)
                time.sleep(1.0)
                settle = settled_after(traffic.snapshot(), returned, "1.0.0")
                settle_s.append(settle if settle is not None else float("nan"))
        samples = traffic.samples
        failed = failures(samples)
        span = samples[-1].started - samples[0].started if samples else 1
        print(f"cycles                      {args.cycles}")
        print(
            f"requests                    {len(samples)} ({len(samples) / span:.0f}/s offered "
            f"{args.rate:.0f}/s)"
        )
        print(f"failed requests             {len(failed)}")
        print(f"rolling deploy (4 x batch 1) median {statistics.median(rollout_s):.2f}s")
        print(f"rollback API call           median {statistics.median(call_ms):.0f}ms")
        print(f"rollback complete           median {statistics.median(rollback_s):.2f}s")
        print(
            "rollback -> every new request on the old version: "
            f"p50 {1000 * pct(settle_s, 0.5):.0f}ms  max {1000 * max(settle_s):.0f}ms"
        )
    finally:
        supervisor.stop()
        if redis is not None:
            redis.stop()


if __name__ == "__main__":
    main()
