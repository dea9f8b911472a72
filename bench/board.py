"""The board page's server time and query count with a realistic history.

    .venv/bin/python bench/board.py [--services 50] [--environments 4] [--deployments 10000]
                                    [--requests 200]

Creates a fresh database next to DATABASE_URL's (``<name>_boardbench``; SQLite under var/bench/
without one), migrates it, fills it with services x environments targets, releases and past
deployments (bulk inserts, spread over the last 90 days, some failed or rolled back, one active
deployment in every fifth cell), then renders the board in-process through Django's test client
as a superuser and as a viewer of one environment (whose role filters every query), and prints
the server time per page (p50/p95/p99) -- wall clock, and the part of it that is this process's
CPU and waiting for the database, since a shared machine's load shows in the wall clock -- and
the queries per page; then the same after ``gc.freeze()`` (the p95 tail is otherwise the cyclic
garbage collector walking the whole long-lived heap now and then). Also times the WebSocket
snapshot of the board (every cell as a ``board.cell`` message).
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import statistics
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def bench_database(suffix: str) -> str:
    url = os.environ.get("DATABASE_URL", "")
    if url.startswith("postgres"):
        parts = urlsplit(url)
        name = parts.path.lstrip("/") + suffix
        host, user = parts.hostname or "127.0.0.1", parts.username or "postgres"
        subprocess.run(["dropdb", "--if-exists", "-h", host, "-U", user, name], check=False)
        subprocess.run(["createdb", "-h", host, "-U", user, name], check=True)
        return urlunsplit(parts._replace(path=f"/{name}"))
    var = ROOT / "var" / "bench"
    var.mkdir(parents=True, exist_ok=True)
    path = var / f"board{suffix}.sqlite3"
    path.unlink(missing_ok=True)
    return f"sqlite:///{path}"


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def seed(services: int, environments: int, deployments: int) -> None:
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from releases.models import Deployment, Environment, Release, RoleBinding, Service, Target

    rng = random.Random(7)
    User = get_user_model()
    users = [
        User.objects.create_superuser(f"admin{i}", f"a{i}@example.com", "pw") for i in range(5)
    ]
    viewer = User.objects.create_user("viewer", "v@example.com", "pw")
    envs = Environment.objects.bulk_create(
        Environment(slug=f"env{e}", name=f"Env {e}", order=e * 10) for e in range(environments)
    )
    RoleBinding.objects.create(user=viewer, environment=envs[-1], role="viewer")
    svcs = Service.objects.bulk_create(
        Service(slug=f"svc{s:02d}", name=f"Service {s}", team=f"team{s % 7}")
        for s in range(services)
    )
    now = timezone.now()
    per_target = max(2, deployments // (services * environments))
    releases = Release.objects.bulk_create(
        Release(
            service=s,
            version=f"1.{v}.0",
            artifact={"sample": {}},
            created_by=users[v % 5],
            created_via="api",
        )
        for s in svcs
        for v in range(per_target + 1)
    )
    by_service: dict[int, list] = {}
    for r in releases:
        by_service.setdefault(r.service_id, []).append(r)
    targets = Target.objects.bulk_create(
        Target(service=s, environment=e, provider="local", stable_slot="blue")
        for s in svcs
        for e in envs
    )
    spec = {"kind": "rolling", "replicas": 2, "batch_size": 1, "max_surge": 1}
    rows, stable = [], {}
    outcomes = ["succeeded"] * 16 + ["failed", "rolled_back", "aborted"]
    for i, t in enumerate(targets):
        chain = by_service[t.service_id]
        for k in range(per_target):
            finished = now - timedelta(minutes=(per_target - k) * rng.randint(60, 600))
            state = outcomes[rng.randrange(len(outcomes))] if k else "succeeded"
            rows.append(
                Deployment(
                    target=t,
                    release=chain[k],
                    from_release=chain[k - 1] if k else None,
                    state=state,
                    strategy=spec,
                    step_index=1,
                    step="batch 2 of 2",
                    weights={"stable": 0, "canary": 100},
                    stable_slot="blue",
                    canary_slot="green",
                    created_by=users[k % 5],
                    started_at=finished - timedelta(minutes=3),
                    finished_at=finished,
                )
            )
            if state == "succeeded":
                stable[t.pk] = chain[k]
        if i % 5 == 0:  # an active deployment in every fifth cell
            rows.append(
                Deployment(
                    target=t,
                    release=chain[per_target],
                    from_release=stable.get(t.pk),
                    state="progressing",
                    strategy=spec,
                    step_index=0,
                    step="batch 1 of 2",
                    weights={"stable": 50, "canary": 50},
                    stable_slot="blue",
                    canary_slot="green",
                    created_by=users[0],
                    started_at=now - timedelta(minutes=1),
                )
            )
    Deployment.objects.bulk_create(rows, batch_size=2000)
    for t in targets:
        Target.objects.filter(pk=t.pk).update(stable_release=stable.get(t.pk))
    # Deployment.created_at is auto_now_add: place it before started_at, as in real life
    from django.db.models import F

    Deployment.objects.update(created_at=F("started_at") - timedelta(seconds=5))
    # what autovacuum does to a live table: fresh statistics, no dead rows from the update above
    from django.db import connection

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")


def measure(client, path: str, count: int) -> dict:
    """Per request: wall-clock time, this process's CPU time, and the time spent waiting for the
    database; then the queries and the size of one page."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    waited = [0.0]

    def timed(execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            waited[0] += time.perf_counter() - started

    client.get(path)  # warm up (template loading, connection)
    wall, cpu, db = [], [], []
    with connection.execute_wrapper(timed):
        for _ in range(count):
            waited[0] = 0.0
            started, started_cpu = time.perf_counter(), time.process_time()
            response = client.get(path)
            wall.append(1000 * (time.perf_counter() - started))
            cpu.append(1000 * (time.process_time() - started_cpu))
            db.append(1000 * waited[0])
            assert response.status_code == 200, response.status_code
    with CaptureQueriesContext(connection) as queries:
        response = client.get(path)
    return {
        "wall": wall,
        "cpu": cpu,
        "db": db,
        "queries": len(queries.captured_queries),
        "size": len(response.content),
    }


def show(values: list[float]) -> str:
    return (
        f"p50 {statistics.median(values):5.1f}  p95 {percentile(values, 95):5.1f}  "
        f"p99 {percentile(values, 99):5.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--services", type=int, default=50)
    parser.add_argument("--environments", type=int, default=4)
    parser.add_argument("--deployments", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()

    os.environ["DATABASE_URL"] = bench_database("_boardbench")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "switchyard.settings")
    os.environ.setdefault("SECRET_KEY", "bench-only-secret")
    import django

    django.setup()
    from django.core.management import call_command
    from django.test import Client

    from releases.live.presenters import board_cells
    from releases.models import Deployment, Target

    call_command("migrate", verbosity=0)
    started = time.perf_counter()
    seed(args.services, args.environments, args.deployments)
    print(
        f"seeded {Target.objects.count()} targets and {Deployment.objects.count()} deployments "
        f"in {time.perf_counter() - started:.1f}s ({os.environ['DATABASE_URL'].split('@')[-1]})"
    )
    load = os.getloadavg()[0]
    print(f"load average {load:.2f} on {os.cpu_count()} CPUs while measuring")
    clients = {}
    for who in ("admin0", "viewer"):
        clients[who] = Client()
        clients[who].login(username=who, password="pw")
    for frozen in (False, True):
        if frozen:
            # what a web process gets from gc.freeze() once it has loaded everything: a full
            # collection no longer walks the long-lived heap (Django, the URL conf, templates)
            gc.collect()
            gc.freeze()
            print("-- with gc.freeze() after start-up:")
        for who, client in clients.items():
            m = measure(client, "/", args.requests)
            print(
                f"board as {who}: {m['queries']} queries/page, {m['size'] // 1024} KiB, "
                f"{args.requests} requests\n"
                f"  server time (wall clock)        {show(m['wall'])}\n"
                f"  of which this process's CPU     {show(m['cpu'])}\n"
                f"  of which waiting for Postgres   {show(m['db'])}"
            )
    snapshots = []
    for _ in range(20):
        started = time.perf_counter()
        cells = board_cells()
        snapshots.append(1000 * (time.perf_counter() - started))
    print(
        f"board WebSocket snapshot ({len(cells)} cells): p50 {statistics.median(snapshots):.1f} ms"
        f"  p95 {percentile(snapshots, 95):.1f} ms"
    )


if __name__ == "__main__":
    main()
