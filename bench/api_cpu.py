"""The CPU each of bench/api.py's four requests costs the web server, in process.

    .venv/bin/python bench/api_cpu.py [--requests 300] [--rounds 5] [--reuse]
                                      [--profile get|list|release|deploy]

Seeds ``<name>_apicpu`` beside DATABASE_URL's (Postgres only) with ``bench.api.seed`` (50
services x 4 environments, 20,000 deployments, 100,000 events unless told), then sends, per
endpoint, rounds of requests through Django's test client (every middleware, the token's auth,
the view, the JSON) and prints the CPU milliseconds per request (``time.process_time``, the
median round) and the SQL queries of one request. No server, no client and no network: what is
left is the web process's own work (and psycopg's side of its queries), what the served run's
"web server CPU" approaches. ``--reuse``: the database seeded last time (without
``POST /deployments``: its targets are busy). ``--profile KIND``: that endpoint's cProfile in
CPU time, by cumulative and by own time. Timings belong here, not in tests (docs/serving.md).
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.board import bench_database  # noqa: E402

KINDS = ("get", "list", "release", "deploy")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=300, help="per endpoint and round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--services", type=int, default=50)
    parser.add_argument("--deployments", type=int, default=20_000)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--profile", choices=KINDS, help="print this endpoint's cProfile")
    parser.add_argument("--reuse", action="store_true", help="keep the seeded database")
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        sys.exit("bench/api_cpu.py needs DATABASE_URL pointing at Postgres")
    if args.reuse:
        url = os.environ["DATABASE_URL"]
        os.environ["DATABASE_URL"] = url + "_apicpu"
    else:
        os.environ["DATABASE_URL"] = bench_database("_apicpu")
    os.environ.update(DEBUG="false", ALLOWED_HOSTS="testserver")
    os.environ.setdefault("SECRET_KEY", "bench-only-secret-key")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "switchyard.settings")
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from bench.api import ENVIRONMENTS, STRATEGY, seed
    from releases.governance import tokens
    from releases.models import Release

    call_command("migrate", verbosity=0)
    User = get_user_model()
    if not User.objects.filter(username="bench").exists():
        User.objects.create_superuser("bench", "b@example.com", "bench")
    user = User.objects.get(username="bench")
    _, token = tokens.create(user, f"bench-{time.time_ns()}")
    if args.reuse:
        from releases.models import Deployment, Service

        services = sorted(Service.objects.values_list("slug", flat=True))
        history = {"services": services, "deployments": Deployment.objects.count()}
    else:
        history = seed(args.services, args.deployments, args.events)
    services = history["services"]
    client = Client(headers={"Authorization": f"Bearer {token}"})
    serial = iter(range(10**9))
    # every target at rest gets one deployment (the bench's rule): release versions per service
    # are 1.0.0 .. 1.(n-1).0; deploy an older one that is not live
    deployable = iter([(s, e) for s in services for e in ENVIRONMENTS])
    versions = {}

    def version_of(service: str) -> str:  # the second newest: never the live one
        if service not in versions:
            rows = Release.objects.filter(service__slug=service).order_by("-id")
            versions[service] = rows.values_list("version", flat=True)[1]
        return versions[service]

    def request(kind: str, i: int):
        n = next(serial)
        if kind == "get":
            return client.get(f"/api/v1/deployments/{1 + (i * 7919) % history['deployments']}")
        if kind == "list":
            return client.get(f"/api/v1/deployments?service={services[i % len(services)]}")
        if kind == "release":
            body = {"version": f"9.{n}.{time.time_ns()}", "artifact": {"sample": {}}}
            body["commit"] = "abc1234"
            return client.post(
                f"/api/v1/services/{services[i % len(services)]}/releases",
                body,
                content_type="application/json",
            )
        service, environment = next(deployable)
        body = {
            "service": service,
            "environment": environment,
            "version": version_of(service),
            "strategy": STRATEGY,
        }
        return client.post("/api/v1/deployments", body, content_type="application/json")

    expected = {"get": 200, "list": 200, "release": 201, "deploy": 201}
    # warm up: imports, the connection, URL resolvers, pydantic's validators
    for kind in ("get", "list", "release"):
        for i in range(20):
            request(kind, i)
    n_deploy = len(services) * len(ENVIRONMENTS)
    print(
        f"load average {os.getloadavg()[0]:.2f}; {args.requests} requests x {args.rounds} rounds "
        f"per endpoint (POST /deployments: {n_deploy} in all, one per target)",
        flush=True,
    )
    for kind in KINDS:
        if kind == "deploy" and args.reuse:
            continue
        per_round = args.requests if kind != "deploy" else (n_deploy - 1) // (args.rounds + 1)
        with CaptureQueriesContext(connection) as queries:
            response = request(kind, 0)
        assert response.status_code == expected[kind], (kind, response.content[:500])
        n_queries = len(queries)
        rounds = []
        for _ in range(args.rounds):
            started = time.process_time()
            for i in range(per_round):
                response = request(kind, i)
            rounds.append((time.process_time() - started) / per_round)
            assert response.status_code == expected[kind], (kind, response.content[:500])
        print(
            f"{kind:8} {1000 * statistics.median(rounds):6.2f} ms per request "
            f"(rounds {', '.join(f'{1000 * r:.2f}' for r in rounds)}), {n_queries} queries",
            flush=True,
        )
        if args.profile == kind:
            profile = cProfile.Profile(time.process_time)
            profile.enable()
            for i in range(per_round):
                request(kind, i)
            profile.disable()
            pstats.Stats(profile).sort_stats("cumulative").print_stats(60)
            pstats.Stats(profile).sort_stats("tottime").print_stats(40)


if __name__ == "__main__":
    main()
