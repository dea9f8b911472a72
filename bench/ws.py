"""Event-to-dashboard latency with many dashboards open on one running deployment.

    .venv/bin/python bench/ws.py [--clients 200] [--rounds 3] [--client-processes 2]

Starts (on loopback only) a fresh database (``<name>_wsbench`` next to DATABASE_URL's, or SQLite
under var/bench/), the fleet agent, a Celery worker and the web server (uvicorn,
``WEB_CONCURRENCY`` processes as production runs it), deploys a first release, then per round:
starts a canary deployment of a new release and pauses it, opens ``--clients`` WebSocket
connections to its page (``/ws/deployments/<id>/``, signed in with a session cookie, as a
browser is; spread over ``--client-processes`` processes), resumes it and listens until it ends.
For every ``event`` message a client receives it notes the time from the event's creation (the
worker writing the DeploymentEvent row) to its arrival; at the end it compares what each client
got with the events in the database. Prints the latency p50/p95/p99/max over all deliveries, per
event its first delivery and the spread to its last, the messages lost, how long the connection
storm took, and the stack's CPU during each round. Clients and servers share this machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.board import bench_database  # noqa: E402
from integrations.local.ports import free_port  # noqa: E402
from switchyard import processes  # noqa: E402
from switchyard.embedded_redis import EmbeddedRedis  # noqa: E402

HEALTH = {"path": "/health", "interval": "200ms", "healthy_threshold": 2}
FIRST = {"kind": "rolling", "replicas": 2, "batch_size": "100%", "health": HEALTH}
CANARY = {
    "kind": "canary",
    "steps": [
        {"set_weight": 10},
        {"pause": {"duration": "1s"}},
        {"set_weight": 25},
        {"pause": {"duration": "1s"}},
        {"set_weight": 50},
        {"pause": {"duration": "1s"}},
        {"set_weight": 75},
        {"pause": {"duration": "1s"}},
    ],
    "stable_replicas": 2,
    "health": HEALTH,
}
TERMINAL = {"succeeded", "failed", "rolled_back", "aborted", "rejected"}
ARTIFACT = {"sample": {"latency_ms": 5}}


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


class Dashboard:
    """One WebSocket client, as the deployment page is."""

    def __init__(self, url: str, headers: list[tuple[str, str]], release: asyncio.Event):
        self.url, self.headers = url, headers
        self.events: dict[int, float] = {}  # event id -> latency (s)
        self.messages = 0
        self.ready = asyncio.Event()
        self.done = asyncio.Event()
        self.ended = asyncio.Event()  # it has seen the deployment end
        # closed only once every dashboard has seen the end: a client closing its connection
        # must not delay the others' last frames (browsers do not share one event loop)
        self.release = release

    async def run(self) -> None:
        import websockets

        async with websockets.connect(
            self.url, additional_headers=self.headers, max_size=None, open_timeout=60
        ) as ws:
            async for raw in ws:
                now = time.time()
                frame = json.loads(raw)  # a message, or the messages of one change (an array)
                for message in frame if isinstance(frame, list) else [frame]:
                    if self.take(message, now):
                        self.ended.set()
                        await self.release.wait()
                        return

    def take(self, message: dict, now: float) -> bool:
        """Note one message; True once the deployment has ended and its target followed."""
        self.messages += 1
        kind, data = message["type"], message["data"]
        if kind == "metrics":  # the last message of the snapshot
            self.ready.set()
        elif kind == "event":
            created = datetime.fromisoformat(data["created_at"]).timestamp()
            self.events.setdefault(data["id"], now - created)
        elif kind == "deployment" and data["state"] in TERMINAL and self.ready.is_set():
            self.done.set()
        return self.done.is_set() and kind == "target"  # the target follows the last deployment


async def connect(url: str, headers: list, count: int) -> tuple[list, list]:
    """``count`` dashboards connected and in sync (their snapshot read), and their tasks."""
    release = asyncio.Event()
    clients = [Dashboard(url, headers, release) for _ in range(count)]
    tasks = [asyncio.create_task(c.run()) for c in clients]
    await asyncio.wait_for(asyncio.gather(*(c.ready.wait() for c in clients)), timeout=120)
    return clients, tasks


async def until_ended(clients: list, tasks: list, timeout: float) -> None:
    """Until every dashboard has seen the deployment end (or ``timeout``); then they close."""
    try:
        await asyncio.wait_for(asyncio.gather(*(c.ended.wait() for c in clients)), timeout)
    except TimeoutError:
        pass
    clients[0].release.set()
    try:
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=30)
    except TimeoutError:
        for task in tasks:
            task.cancel()


def _listen(url: str, headers: list, count: int, timeout: float, pipe) -> None:
    """A client process of ``--client-processes``: ``count`` dashboards; sends "ready" once all
    are in sync, then each one's (events, messages) when the deployment has ended."""

    async def listen():
        clients, tasks = await connect(url, headers, count)
        pipe.send("ready")
        await until_ended(clients, tasks, timeout)
        pipe.send([(c.events, c.messages) for c in clients])

    asyncio.run(listen())
    pipe.recv()  # stay until the round's CPU is read (Listeners.close)


class Listeners:
    """The dashboards spread over several client processes, as a thousand browsers are not one
    event loop: one process parses every frame of a publish one after the other, and that
    queue is then part of what is measured."""

    def __init__(self, processes: list, pipes: list):
        self.processes, self.pipes = processes, pipes

    @classmethod
    async def start(cls, args, url: str, headers: list) -> Listeners:
        import multiprocessing

        context = multiprocessing.get_context("spawn")
        n = args.client_processes
        processes, pipes = [], []
        for i in range(n):
            count = args.clients // n + (1 if i < args.clients % n else 0)
            mine, theirs = context.Pipe()
            process = context.Process(
                target=_listen, args=(url, headers, count, args.timeout, theirs), daemon=True
            )
            process.start()
            processes.append(process)
            pipes.append(mine)
        for pipe in pipes:
            ready = await asyncio.to_thread(pipe.poll, 180)
            assert ready and pipe.recv() == "ready", "the dashboards did not all connect"
        return cls(processes, pipes)

    def results(self, timeout: float) -> list:
        """Every dashboard's events and message count (as ``Dashboard`` has them)."""
        from types import SimpleNamespace

        clients = []
        for pipe in self.pipes:
            if pipe.poll(timeout):
                clients += [SimpleNamespace(events=e, messages=m) for e, m in pipe.recv()]
        return clients

    def close(self) -> None:
        for pipe in self.pipes:
            pipe.send("bye")
        for process in self.processes:
            process.join(10)


async def one_round(args, base: str, cookie: str, user, target, version: str) -> dict:
    from releases import actions
    from releases.actors import Actor
    from releases.models import Deployment, DeploymentEvent

    actor = Actor(user=user, channel="api", via="bench")

    def start():
        actions.create_release(actor, target.service, version=version, artifact=ARTIFACT)
        d, _ = actions.start_deployment(
            actor,
            service=target.service,
            environment=target.environment,
            version=version,
            strategy=CANARY,
        )
        actions.pause(actor, d.pk)
        return d

    d = await asyncio.to_thread(start)
    ws_url = base.replace("http://", "ws://") + f"/ws/deployments/{d.pk}/"
    headers = [("Cookie", cookie), ("Origin", base)]
    started = time.monotonic()
    if args.client_processes > 1:
        listeners = await Listeners.start(args, ws_url, headers)
    else:
        clients, tasks = await connect(ws_url, headers, args.clients)
    storm = time.monotonic() - started

    def resume():
        last = DeploymentEvent.objects.filter(deployment=d).order_by("-id").first()
        actions.resume(actor, d.pk)
        return last.pk

    from bench.scale import Sampler

    url = os.environ.get("DATABASE_URL", "")
    database = url.rsplit("/", 1)[-1] if url.startswith("postgres") else ""
    sampler = Sampler(database)  # "this bench": this process and the client processes
    if args.client_processes > 1 and sampler.psutil is not None:
        sampler.procs["client"] += [sampler.psutil.Process(p.pid) for p in listeners.processes]
    with sampler:  # the CPU of the stack while the round is relayed
        before = await asyncio.to_thread(resume)
        if args.client_processes > 1:
            clients = await asyncio.to_thread(listeners.results, args.timeout + 30)
        else:
            await until_ended(clients, tasks, args.timeout)
    if args.client_processes > 1:
        listeners.close()
    state = await asyncio.to_thread(lambda: Deployment.objects.get(pk=d.pk).state)
    expected = await asyncio.to_thread(
        lambda: set(
            DeploymentEvent.objects.filter(deployment=d, pk__gt=before).values_list("pk", flat=True)
        )
    )
    latencies = [c.events[i] for c in clients for i in expected if i in c.events]
    # per event: its first delivery (the publish path) and how long the last client waited after
    # the first (the fan-out)
    firsts, spreads = [], []
    for i in expected:
        got = [c.events[i] for c in clients if i in c.events]
        if got:
            firsts.append(min(got))
            spreads.append(max(got) - min(got))
    lost = sum(len(expected - set(c.events)) for c in clients)
    lost += (args.clients - len(clients)) * len(expected)  # a client process that never answered
    return {
        "deployment": d.pk,
        "state": state,
        "events": len(expected),
        "latencies": latencies,
        "firsts": firsts,
        "spreads": spreads,
        "lost": lost,
        "storm": storm,
        "sampler": sampler,
        "messages": sum(c.messages for c in clients),
    }


async def run(args, base: str, env: dict) -> None:
    from django.contrib.auth import get_user_model
    from django.test import Client
    from django.urls import get_resolver

    from releases import actions
    from releases.actors import Actor
    from releases.models import Deployment, Environment, Service, Target

    def setup():
        user = get_user_model().objects.create_superuser("bench", "bench@example.com", "pw")
        service = Service.objects.create(slug="api", name="API")
        environment = Environment.objects.create(slug="prod", name="Prod", order=1)
        target = Target.objects.create(service=service, environment=environment, provider="local")
        actor = Actor(user=user, channel="api", via="bench")
        actions.create_release(actor, service, version="1.0.0", artifact=ARTIFACT)
        first, _ = actions.start_deployment(
            actor, service=service, environment=environment, version="1.0.0", strategy=FIRST
        )
        client = Client()
        client.force_login(user)
        cookie = client.cookies["sessionid"]
        return user, target, first, f"sessionid={cookie.value}"

    user, target, first, cookie = await asyncio.to_thread(setup)
    # this process resumes the deployment as a web process serving the operator's click would:
    # with its URL resolver built (switchyard/asgi.py), else its first publish imports every view
    await asyncio.to_thread(lambda: get_resolver().url_patterns)
    deadline = time.monotonic() + 90
    while await asyncio.to_thread(lambda: Deployment.objects.get(pk=first.pk).state) != "succeeded":
        assert time.monotonic() < deadline, "the first release did not go live"
        await asyncio.sleep(0.3)

    results = []
    for n in range(args.rounds):
        result = await one_round(args, base, cookie, user, target, f"1.{n + 1}.0")
        ms = [1000 * x for x in result["latencies"]]
        print(
            f"round {n + 1}: deployment #{result['deployment']} {result['state']}, "
            f"{result['events']} events x {args.clients} clients: "
            f"p50 {statistics.median(ms):.0f} ms, p95 {percentile(ms, 95):.0f} ms, "
            f"p99 {percentile(ms, 99):.0f} ms, max {max(ms):.0f} ms; lost {result['lost']}; "
            f"{args.clients} connected and in sync in {result['storm']:.1f}s",
            flush=True,
        )
        first, spread = [1000 * x for x in result["firsts"]], [1000 * x for x in result["spreads"]]
        print(
            f"  per event: first client p50 {statistics.median(first):.0f} ms, "
            f"max {max(first):.0f} ms; first -> last client "
            f"p50 {statistics.median(spread):.0f} ms, max {max(spread):.0f} ms",
            flush=True,
        )
        result.pop("sampler").report()
        results.append(result)
    ms = [1000 * x for r in results for x in r["latencies"]]
    deliveries = sum(r["events"] for r in results) * args.clients
    print(
        f"\nevent -> dashboard, {args.clients} dashboards, {len(ms)} deliveries: "
        f"p50 {statistics.median(ms):.0f} ms  p95 {percentile(ms, 95):.0f} ms  "
        f"p99 {percentile(ms, 99):.0f} ms  max {max(ms):.0f} ms"
    )
    print(
        f"messages lost: {sum(r['lost'] for r in results)} of {deliveries} event deliveries; "
        f"{sum(r['messages'] for r in results)} WebSocket messages received in all"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument(
        "--client-processes",
        type=int,
        default=2,
        help="spread the dashboards over this many client processes (1: all in this one, whose "
        "event loop then parses every frame of a publish in turn, and resumes the deployment)",
    )
    args = parser.parse_args()

    var = ROOT / "var" / "bench"
    var.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env["SWITCHYARD_VAR_DIR"] = str(var)
    env["DATABASE_URL"] = bench_database("_wsbench")
    redis = None
    if not env.get("REDIS_URL"):
        redis = EmbeddedRedis(var / "redis.sock").start()
        env["REDIS_URL"] = redis.url
    env.setdefault("SECRET_KEY", "bench-only-secret")
    env.update(
        FLEET_TOKEN="bench-fleet-token",
        FLEET_URL=f"http://127.0.0.1:{free_port()}",
        ALLOWED_HOSTS="127.0.0.1,localhost",
    )
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--verbosity", "0"], cwd=ROOT, env=env, check=True
    )
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    fleet_port = int(env["FLEET_URL"].rsplit(":", 1)[1])
    with processes.Supervisor(env=env, log_dir=var / "ws-logs") as supervisor:
        supervisor.start("fleet", processes.fleet_command(fleet_port, env["FLEET_TOKEN"]))
        supervisor.start("worker", processes.worker_command(concurrency=2))
        supervisor.start("web", processes.web_command(port), env=processes.WEB_ENV)
        processes.wait_http(f"{env['FLEET_URL']}/healthz", timeout=30)
        processes.wait_http(f"{base}/login/", timeout=30)
        os.environ.update(env)
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "switchyard.settings")
        import django

        django.setup()
        try:
            asyncio.run(run(args, base, env))
        finally:
            dead = supervisor.check()
            if dead:
                print(f"exited early: {dead} (logs in {var / 'ws-logs'})")
    if redis is not None:
        redis.stop()


if __name__ == "__main__":
    main()
