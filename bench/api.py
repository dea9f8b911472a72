"""The REST API under open-loop load, on Postgres, with a realistic history.

    .venv/bin/python bench/api.py [--rate 500] [--duration 30] [--web-workers N] [--quick]
                                  [--server asgi|wsgi] [--web-threads N]

Seeds a fresh database (``<name>_apibench`` beside DATABASE_URL's; Postgres only) with 200
services x 4 environments (800 local targets), 100,000 finished deployments and 1,000,000
deployment events (COPY, in a few seconds), ANALYZEs it and prints the ``EXPLAIN ANALYZE`` of the
list queries. Then starts the web server exactly as production runs it
(``switchyard.processes.web_command``: uvicorn, ``--web-workers`` processes, ``DEBUG`` off) with
``SWITCHYARD_COUNT_QUERIES`` set, so every response says how many SQL queries it made.
``--server wsgi`` serves the same HTTP with gunicorn's threaded workers instead
(``processes.http_command``: ``switchyard.wsgi``, a persistent connection per thread), to compare
the two servers' CPU per request. Besides the web server's CPU, the run prints what the Postgres
backends and this client spent, per request: all three share the 2 cores. No Celery
worker runs: the deployments the load creates stay ``pending`` (their ticks wait in this bench's
Redis), which is what the API costs without the loop.

The load is open-loop: request ``i`` is sent at ``start + i / rate`` whether or not earlier ones
have been answered, and its latency is counted from that moment (a server that falls behind
shows it in the tail, rather than slowing the client down). The mix:

- ``GET /deployments/{id}`` (a random seeded deployment)        45%
- ``GET /deployments?service=<slug>`` (a random service)         40%
- ``POST /services/{slug}/releases`` (a new version)             10%
- ``POST /deployments`` (a seeded release on a target at rest)    5%, at most one per target

Prints, per endpoint and in all: requests, p50/p99/max latency, errors (any transport failure
or an unexpected status), SQL queries per request; and the throughput reached. Client and server
share this machine (127.0.0.1 only). ``--quick``: 20 services, 2,000 deployments, 20,000 events,
50 req/s for 3 s (what ``tests/test_bench_api.py`` runs).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import random
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.board import bench_database  # noqa: E402
from integrations.local.ports import free_port  # noqa: E402
from switchyard import processes  # noqa: E402

ENVIRONMENTS = ("dev", "staging", "canary", "prod")
KINDS = ("created", "started", "step", "weights", "health", "succeeded")
STRATEGY = {"kind": "rolling", "replicas": 2, "batch_size": 1}
MIX = (("get", 45), ("list", 40), ("release", 10), ("deploy", 5))


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


# --- seeding --------------------------------------------------------------------------------------


def _copy(cursor, table: str, columns: tuple[str, ...], rows) -> int:
    """COPY ``rows`` (tuples; dicts and lists become JSON) into ``table``."""
    n = 0
    with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row([json.dumps(v) if isinstance(v, (dict, list)) else v for v in row])
            n += 1
    return n


def seed(services: int, deployments: int, events: int) -> dict:
    """The history, by COPY with explicit ids. Returns what the load needs."""
    from django.contrib.auth import get_user_model
    from django.db import connection

    admin = get_user_model().objects.get(username="bench")
    rng = random.Random(18)
    now = datetime.now(UTC)
    started = time.monotonic()
    targets_per_service = len(ENVIRONMENTS)
    n_targets = services * targets_per_service
    per_target = max(1, deployments // n_targets)
    with connection.cursor() as c:
        cur = c.cursor  # psycopg's own cursor: COPY
        _copy(
            cur,
            "releases_environment",
            ("id", "slug", "name", '"order"', "default_strategy", "created_at", "rollback_window"),
            ((i + 1, e, e.title(), i, {}, now, 300) for i, e in enumerate(ENVIRONMENTS)),
        )
        _copy(
            cur,
            "releases_service",
            ("id", "slug", "name", "repository", "team", "default_strategy", "created_at"),
            ((s + 1, f"svc-{s:03d}", f"Service {s}", "", "", {}, now) for s in range(services)),
        )
        # one release per deployment of the service's prod-most target, shared by its targets
        releases_per_service = per_target
        _copy(
            cur,
            "releases_release",
            (
                "id",
                "service_id",
                "version",
                "artifact",
                "commit",
                "notes",
                "created_by_id",
                "created_via",
                "created_at",
            ),
            (
                (
                    s * releases_per_service + r + 1,
                    s + 1,
                    f"1.{r}.0",
                    {"sample": {}},
                    f"{rng.getrandbits(28):07x}",
                    "",
                    admin.pk,
                    "api",
                    now - timedelta(minutes=releases_per_service - r),
                )
                for s in range(services)
                for r in range(releases_per_service)
            ),
        )

        def release_id(s: int, r: int) -> int:
            return s * releases_per_service + r + 1

        _copy(
            cur,
            "releases_target",
            (
                "id",
                "service_id",
                "environment_id",
                "provider",
                "config",
                "strategy",
                "stable_release_id",
                "stable_slot",
                "endpoint",
                "observed",
                "updated_at",
            ),
            (
                (
                    s * targets_per_service + e + 1,
                    s + 1,
                    e + 1,
                    "local",
                    {},
                    {},
                    release_id(s, per_target - 1),
                    "blue",
                    "",
                    {},
                    now,
                )
                for s in range(services)
                for e in range(targets_per_service)
            ),
        )
        columns = (
            "id",
            "target_id",
            "release_id",
            "from_release_id",
            "state",
            "strategy",
            "step_index",
            "step",
            "progress",
            "weights",
            "stable_slot",
            "canary_slot",
            "intent",
            "rollback_outcome",
            "checks",
            "reason",
            "message",
            "failure_reason",
            "created_by_id",
            "created_via",
            "idempotency_key",
            "version",
            "lease_owner",
            "lease_generation",
            "tick_failures",
            "created_at",
            "started_at",
            "finished_at",
            "updated_at",
        )

        def deployment_rows():
            pk = 0
            for r in range(per_target):  # oldest first, all targets, so ids rise with time
                for t in range(n_targets):
                    pk += 1
                    s = t // targets_per_service
                    at = now - timedelta(seconds=(per_target - r) * 600 + (n_targets - t))
                    state = "succeeded" if rng.random() < 0.9 else "rolled_back"
                    slots = ("blue", "green") if r % 2 else ("green", "blue")
                    yield (
                        pk,
                        t + 1,
                        release_id(s, r),
                        release_id(s, r - 1) if r else None,
                        state,
                        STRATEGY,
                        1,
                        "done",
                        {},
                        {"stable": 0, "canary": 100},
                        slots[0],
                        slots[1],
                        "",
                        "",
                        {},
                        "",
                        "Deployed.",
                        "",
                        admin.pk,
                        "api",
                        "",
                        3,
                        "",
                        0,
                        0,
                        at,
                        at,
                        at + timedelta(seconds=40),
                        at + timedelta(seconds=40),
                    )

        n_deployments = _copy(cur, "releases_deployment", columns, deployment_rows())
        per_deployment = max(1, events // n_deployments)
        _copy(
            cur,
            "releases_deploymentevent",
            ("id", "deployment_id", "kind", "message", "data", "actor", "created_at"),
            (
                (
                    d * per_deployment + k + 1,
                    d + 1,
                    KINDS[k % len(KINDS)],
                    f"step {k}: weights moved",
                    {"step": k},
                    "worker",
                    now - timedelta(seconds=n_deployments - d),
                )
                for d in range(n_deployments)
                for k in range(per_deployment)
            ),
        )
        for table in (
            "releases_environment",
            "releases_service",
            "releases_release",
            "releases_target",
            "releases_deployment",
            "releases_deploymentevent",
        ):
            c.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT max(id) FROM {table}))"
            )
        c.execute("VACUUM ANALYZE")  # as autovacuum would have, for a history this old
    print(
        f"seeded {services} services x {len(ENVIRONMENTS)} environments, {n_deployments} "
        f"deployments, {n_deployments * per_deployment} events in "
        f"{time.monotonic() - started:.1f}s",
        flush=True,
    )
    return {
        "services": [f"svc-{s:03d}" for s in range(services)],
        "deployments": n_deployments,
        "targets": [
            (f"svc-{s:03d}", ENVIRONMENTS[e], f"1.{per_target - 2 if per_target > 1 else 0}.0")
            for s in range(services)
            for e in range(targets_per_service)
        ],
    }


def explain(services: list[str]) -> str:
    """The plans of the list queries, as the API runs them (a superuser sees every row)."""
    from django.db import connection

    from releases.api.deployments import _deployments
    from releases.live.rows import rows_sql
    from releases.models import DeploymentEvent

    out = io.StringIO()
    slug = services[len(services) // 2]

    def page(qs):  # as releases.api.deployments.list_deployments reads a page: ids, then rows
        return qs.order_by("-id").values_list("pk", flat=True)[:51]

    ids = list(page(_deployments().filter(target__service__slug=slug)))
    queries = {
        f"GET /deployments?service={slug}: the page's ids": page(
            _deployments().filter(target__service__slug=slug)
        ),
        f"GET /deployments?service={slug}: the page's rows": _deployments().filter(pk__in=ids),
        "GET /deployments: the page's ids": page(_deployments()),
        f"GET /deployments?service={slug}&environment=prod&state=succeeded: the ids": page(
            _deployments().filter(
                target__service__slug=slug, target__environment__slug="prod", state="succeeded"
            )
        ),
        "GET /deployments/{id}/events (one deployment's time line)": DeploymentEvent.objects.filter(
            deployment_id=ids[0]
        ).order_by("id")[:201],
    }
    for title, qs in queries.items():
        if title.endswith("the page's rows"):  # as releases.live.rows reads them
            sql, _ = rows_sql()
            with connection.cursor() as cursor:
                cursor.execute(f"EXPLAIN ANALYZE {sql}", [ids])
                plan = "\n".join(line for (line,) in cursor.fetchall())
        else:
            plan = qs.explain(analyze=True)
        out.write(f"-- {title}\n{plan}\n\n")
    return out.getvalue()


# --- load -----------------------------------------------------------------------------------------


async def load(
    base: str, token: str, history: dict, rate: float, duration: float, *, warmup: bool = False
) -> dict:
    """Open-loop load; ``warmup``: GETs only (the history stays as it is for the run)."""
    import aiohttp

    rng = random.Random(6 if warmup else 5)
    kinds = [k for k, w in MIX for _ in range(w) if not warmup or k in ("get", "list")]
    targets = list(history["targets"])
    rng.shuffle(targets)
    results: dict[str, list] = {k: [] for k, _ in MIX}
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    connector = aiohttp.TCPConnector(limit=512)
    timeout = aiohttp.ClientTimeout(total=10)
    counter = iter(range(10**9))

    async def one(kind: str, due: float, session) -> None:
        n = next(counter)
        if kind == "deploy" and not targets:
            kind = "get"
        if kind == "get":
            method, path, body, ok = (
                "GET",
                f"/deployments/{rng.randint(1, history['deployments'])}",
                None,
                200,
            )
        elif kind == "list":
            method, path, body, ok = (
                "GET",
                f"/deployments?service={rng.choice(history['services'])}",
                None,
                200,
            )
        elif kind == "release":
            slug = rng.choice(history["services"])
            body = {"version": f"9.{n}.0", "artifact": {"sample": {}}, "commit": "abc1234"}
            method, path, ok = "POST", f"/services/{slug}/releases", 201
        else:
            service, environment, version = targets.pop()
            body = {
                "service": service,
                "environment": environment,
                "version": version,
                "strategy": STRATEGY,
            }
            method, path, ok = "POST", "/deployments", 201
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        queries, error = None, None
        try:
            async with session.request(
                method, f"{base}/api/v1{path}", json=body, headers=headers
            ) as response:
                await response.read()
                queries = response.headers.get("X-Queries")
                if response.status != ok:
                    error = f"{response.status} {(await response.text())[:200]}"
        except (aiohttp.ClientError, TimeoutError) as exc:
            error = repr(exc)
        results[kind].append((time.monotonic() - due, error, int(queries) if queries else None))

    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        start = time.monotonic() + 0.5
        total = int(rate * duration)
        tasks = []
        for i in range(total):
            due = start + i / rate
            while due - time.monotonic() > 0.05:  # create tasks just ahead of their time
                await asyncio.sleep(0.01)
            tasks.append(asyncio.create_task(one(rng.choice(kinds), due, session)))
        await asyncio.gather(*tasks)
        elapsed = time.monotonic() - start
    return {"results": results, "elapsed": elapsed, "sent": total}


def _process(supervisor, name: str):
    try:
        import psutil
    except ImportError:  # pragma: no cover - psutil comes with the dev extras
        return None
    return next(psutil.Process(p.pid) for n, p in supervisor.children if n == name)


def _own_cpu() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _cpu_seconds(processes) -> float:
    """User + system CPU seconds of ``processes`` so far (one that just exited counts 0)."""
    total = 0.0
    for p in processes:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except Exception:  # noqa: BLE001 -- a process that just exited
            continue
    return total


def _cpu(proc) -> float:
    """CPU seconds of ``proc`` and its children (uvicorn's workers) so far."""
    if proc is None:
        return float("nan")
    return _cpu_seconds([proc, *proc.children(recursive=True)])


def _postgres_cpu(database: str) -> float:
    """CPU seconds so far of the Postgres backends serving ``database`` (the web server's
    connections persist through a run, in a pool or per thread, so their sum is what the
    run's queries cost Postgres)."""
    try:
        import psutil
    except ImportError:  # pragma: no cover
        return float("nan")
    lines = ((p, " ".join(p.info["cmdline"] or ())) for p in psutil.process_iter(["cmdline"]))
    return _cpu_seconds(
        p for p, line in lines if line.startswith("postgres:") and f" {database} " in line
    )


def report(outcome: dict, rate: float) -> None:
    results = outcome["results"]
    every = [r for rs in results.values() for r in rs]
    head = ("n", "p50 ms", "p99 ms", "max ms", "errors")
    print(f"\n{'endpoint':34} {head[0]:>6} " + " ".join(f"{h:>8}" for h in head[1:]), end="")
    print(f" {'queries':>8}")
    names = {
        "get": "GET /deployments/{id}",
        "list": "GET /deployments?service=",
        "release": "POST /services/{slug}/releases",
        "deploy": "POST /deployments",
    }
    for kind, rows in [*results.items(), ("all", every)]:
        if not rows:
            continue
        ms = [1000 * r[0] for r in rows]
        errors = [r[1] for r in rows if r[1]]
        queries = [r[2] for r in rows if r[2] is not None]
        q = f"{statistics.mean(queries):.1f}" if queries else "-"
        print(
            f"{names.get(kind, kind):34} {len(rows):6} {percentile(ms, 50):8.1f} "
            f"{percentile(ms, 99):8.1f} {max(ms):8.1f} {len(errors):6} {q:>8}"
        )
    print(
        f"\noffered {rate:.0f} req/s; answered {len(every)} of {outcome['sent']} in "
        f"{outcome['elapsed']:.1f}s: {len(every) / outcome['elapsed']:.0f} req/s"
    )
    errors = [r[1] for r in every if r[1]]
    print(f"errors: {len(errors)}" + (f" (first: {errors[0]})" if errors else ""))
    cpu = outcome.get("web_cpu")
    if cpu == cpu and every:  # not NaN
        per = 1000 * cpu / len(every)
        print(
            f"web server CPU: {cpu:.1f} s for {len(every)} requests = {per:.1f} ms per request "
            f"(on 2 idle cores that is at most ~{2000 / per:.0f} req/s; the load average "
            f"while it ran: {os.getloadavg()[0]:.1f})"
        )
    for what in ("postgres_cpu", "client_cpu"):
        cpu = outcome.get(what)
        if cpu is not None and cpu == cpu and every:
            name = "Postgres backends' CPU" if what == "postgres_cpu" else "this client's CPU"
            print(f"{name}: {cpu:.1f} s = {1000 * cpu / len(every):.1f} ms per request")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small history, short light run")
    parser.add_argument("--rate", type=float, help="requests per second (500)")
    parser.add_argument("--duration", type=float, help="seconds of load (30)")
    parser.add_argument("--services", type=int)
    parser.add_argument("--deployments", type=int)
    parser.add_argument("--events", type=int)
    parser.add_argument("--web-workers", type=int, default=None, help="web processes")
    parser.add_argument(
        "--server",
        choices=("wsgi", "asgi"),
        default="asgi",
        help="asgi: uvicorn, as production serves HTTP and WebSockets; wsgi: gunicorn's "
        "threaded workers on switchyard.wsgi, to compare (docs/serving.md)",
    )
    parser.add_argument("--web-threads", type=int, default=None, help="threads per wsgi process")
    parser.add_argument("--explain-out", type=Path, help="also write the EXPLAINs to this file")
    args = parser.parse_args()
    defaults = (50, 3, 20, 2000, 20000) if args.quick else (500, 30, 200, 100_000, 1_000_000)
    rate = args.rate or defaults[0]
    duration = args.duration or defaults[1]
    services = args.services or defaults[2]
    deployments = args.deployments or defaults[3]
    events = args.events or defaults[4]

    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        sys.exit("bench/api.py needs DATABASE_URL pointing at Postgres")
    env = dict(os.environ)
    var = ROOT / "var" / "bench" / "api"
    var.mkdir(parents=True, exist_ok=True)
    env["SWITCHYARD_VAR_DIR"] = str(var)
    env["DATABASE_URL"] = bench_database("_apibench")
    if not env.get("REDIS_URL"):
        sys.exit("bench/api.py needs REDIS_URL (the deployments it creates enqueue ticks there)")
    env.setdefault("SECRET_KEY", "bench-only-secret-key")
    env.update(
        DEBUG="false",
        ALLOWED_HOSTS="127.0.0.1,localhost",
        SWITCHYARD_COUNT_QUERIES="true",
        FLEET_TOKEN="bench-fleet-token",
    )

    def manage(*argv: str) -> str:
        return subprocess.run(
            [sys.executable, "manage.py", *argv],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout

    manage("migrate", "--verbosity", "0")
    manage(
        "shell",
        "-c",
        "from django.contrib.auth.models import User;"
        "User.objects.create_superuser('bench', 'b@example.com', 'bench')",
    )
    token = manage("token", "create", "--user", "bench", "--name", "bench").strip().splitlines()[-1]
    os.environ.update(env)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "switchyard.settings")
    import django

    django.setup()
    history = seed(services, deployments, events)
    plans = explain(history["services"])
    print("\n" + plans)
    if args.explain_out:
        args.explain_out.write_text(plans)
    from django.db import connections

    connections.close_all()

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    workers = args.web_workers or processes.web_workers()
    with processes.Supervisor(env=env, log_dir=var / "logs") as supervisor:
        if args.server == "wsgi":
            threads = args.web_threads or processes.http_threads()
            command = processes.http_command(port, workers=workers, threads=threads)
            supervisor.start("web", command, env=processes.HTTP_ENV)
            server = f"gunicorn gthread, {workers} processes x {threads} threads"
        else:
            command = processes.web_command(port, workers=workers)
            supervisor.start("web", command, env=processes.WEB_ENV)
            server = f"uvicorn, {workers} worker processes"
        processes.wait_http(f"{base}/login/", timeout=60)
        print(
            f"web: {server} on {base}; {rate:.0f} req/s for {duration:.0f}s (open loop); "
            f"load average before: {os.getloadavg()[0]:.1f}",
            flush=True,
        )
        # every worker process imports and connects on its first requests: not counted
        asyncio.run(load(base, token, history, min(rate, 100), 3, warmup=True))
        web = _process(supervisor, "web")
        database = env["DATABASE_URL"].rsplit("/", 1)[-1]
        cpu_before, pg_before, client_before = _cpu(web), _postgres_cpu(database), _own_cpu()
        outcome = asyncio.run(load(base, token, history, rate, duration))
        outcome["web_cpu"] = _cpu(web) - cpu_before
        outcome["postgres_cpu"] = _postgres_cpu(database) - pg_before
        outcome["client_cpu"] = _own_cpu() - client_before
        dead = supervisor.check()
    report(outcome, rate)
    if dead:
        print(f"exited early: {dead} (logs in {var / 'logs'})")


if __name__ == "__main__":
    main()
