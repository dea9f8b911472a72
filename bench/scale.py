"""Many rollouts at once: canaries with analysis on many local targets, and many live dashboards.

    .venv/bin/python bench/scale.py [--targets 100] [--workers 2] [--threads 8] [--dashboards 1000]
                                    [--rate 5] [--interval 1] [--quick]

Part 1 starts the stack of ``bench/harness.py`` (fleet agent, ``--workers`` Celery worker
processes of ``--threads`` threads on the default and priority queues as production runs them,
or with ``--threads 0`` one worker of ``--workers`` prefork processes; beat, the web server as
production runs it; fresh database, loopback only), creates ``--targets`` services with a prod
target on the local fleet, deploys 1.0.0 to all of them, then sends traffic through every router
(``--rate`` req/s per router, open loop) and starts a canary of 2.0.0 on every target at once:
``set_weight 20``, an ``analysis`` step (the canary's error rate against the stable release's,
every ``--interval`` seconds, 1 by default), ``set_weight 50``, ``pause 2s``. While they run it
samples the CPU and memory (RSS, with each process's children: uvicorn's workers, Celery's pool)
of the worker, the web server and the fleet agent (without the application instances it runs,
counted apart), the CPU of the bench database's Postgres backends and of this process (the users'
traffic), and how busy the whole machine is, every second. Prints the tick lag (due -> started,
which every worker logs as ``tick lag``) p50/p99/max, how long the rollouts took, rollouts per
minute, the outcomes, and the CPU and memory figures.

Part 2 runs ``bench/ws.py --clients <dashboards> --rounds 1``: that many WebSocket dashboards on
one running deployment, event -> client p50/p95/p99.

Clients and servers share this machine. ``--quick``: 5 targets, 50 dashboards (what
``tests/test_bench_scale.py`` runs).
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import os
import re
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.harness import TERMINAL, create_service, percentile, stack  # noqa: E402
from switchyard import processes  # noqa: E402

TEMPLATE = {
    "description": "the canary's error rate against the stable release's, every second",
    "metrics": [
        {
            "name": "errors",
            "query": "error_rate",
            "interval": "1s",
            "count": 5,
            "min_samples": 5,
            "margin": 0.3,
            # room to extend: on a loaded machine the open-loop traffic falls behind, and a
            # canary with too few requests to rule out the margin is inconclusive, not healthy
            "max_duration": "90s",
        }
    ],
}
# health probes every second, as a load balancer would (Kubernetes' default period is 10 s):
# the other benches' 200 ms, meant to make one rollout quick, is 1,500 probes a second over
# 300 instances, and was the fleet agent's largest cost at 100 targets (py-spy: 28% of its
# samples, more than the users' requests it forwards)
HEALTH = {"path": "/health", "interval": "1s", "healthy_threshold": 2}
FIRST = {"kind": "rolling", "replicas": 1, "batch_size": "100%", "health": HEALTH}
CANARY = {
    "kind": "canary",
    "steps": [
        {"set_weight": 20},
        {"analysis": {"template": "scale-errors"}},
        {"set_weight": 50},
        {"pause": {"duration": "2s"}},
    ],
    "stable_replicas": 1,
    "canary_replicas": 1,
    "health": HEALTH,
}
# the worker's line per tick (releases.reconcile.tasks): lag, then wall time and CPU
LAG = re.compile(r"tick lag (-?[\d.]+) ms, took ([\d.]+) ms, ([\d.]+) ms CPU")


def _psutil():
    try:
        import psutil
    except ImportError:  # pragma: no cover - psutil comes with the dev extras
        return None
    return psutil


def _tree_usage(proc, skip_children: bool = False) -> tuple[float, int]:
    """CPU seconds and RSS bytes of ``proc`` and (unless ``skip_children``) its descendants."""
    procs = [proc] if skip_children else [proc, *proc.children(recursive=True)]
    cpu, rss = 0.0, 0
    for p in procs:
        try:
            t = p.cpu_times()
            cpu += t.user + t.system
            rss += p.memory_info().rss
        except Exception:  # noqa: BLE001 -- a process that just exited
            continue
    return cpu, rss


class Sampler:
    """CPU and memory of the stack's processes, once a second, in a thread."""

    ROLES = (
        (("uvicorn",), "web"),
        (("celery", " worker "), "worker"),
        (("integrations.local.agent",), "fleet"),
    )

    def __init__(self, database: str = ""):
        self.psutil = _psutil()
        self.samples: list[dict] = []
        self.stop = threading.Event()
        self.procs: dict[str, list] = {}  # role -> its processes (several workers add up)
        self.database = database  # the Postgres backends serving it are counted apart
        self.backends: dict[int, float] = {}  # pid -> CPU seconds last seen
        self.backend_cpu = 0.0  # summed over every backend seen (connections come and go)
        if self.psutil is not None:
            for child in self.psutil.Process(os.getpid()).children():
                cmd = " ".join(child.cmdline()) + " "
                for needles, role in self.ROLES:
                    if all(n in cmd for n in needles):
                        self.procs.setdefault(role, []).append(child)
            self.procs["client"] = [self.psutil.Process(os.getpid())]

    def _postgres(self) -> None:
        """Add the CPU the bench database's backends spent since the last look."""
        if not self.database:
            return
        needle = f" {self.database} "
        for proc in self.psutil.process_iter(["cmdline"]):
            cmd = " ".join(proc.info["cmdline"] or ()) + " "
            if not cmd.startswith("postgres:") or needle not in cmd:
                continue
            try:
                t = proc.cpu_times()
            except Exception:  # noqa: BLE001 -- a backend that just exited
                continue
            cpu = t.user + t.system
            self.backend_cpu += cpu - self.backends.get(proc.pid, 0.0)
            self.backends[proc.pid] = cpu

    def _read(self) -> dict:
        out = {"t": time.monotonic()}
        for role, procs in self.procs.items():
            own = role in ("fleet", "client")  # without their children
            usage = [_tree_usage(proc, skip_children=own) for proc in procs]
            out[role] = (sum(u[0] for u in usage), sum(u[1] for u in usage))
        if "fleet" in self.procs:
            cpu, rss = _tree_usage(self.procs["fleet"][0])
            own_cpu, own_rss = out["fleet"]
            out["instances"] = (cpu - own_cpu, rss - own_rss)
        self._postgres()
        out["postgres"] = (self.backend_cpu, 0)
        busy = self.psutil.cpu_times()
        out["machine"] = (busy.user + busy.system + busy.nice + busy.irq + busy.softirq, 0)
        out["load"] = os.getloadavg()[0]
        return out

    def run(self) -> None:
        while not self.stop.is_set():
            self.samples.append(self._read())
            self.stop.wait(1.0)

    def __enter__(self):
        if self.psutil is not None:
            threading.Thread(target=self.run, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        if self.psutil is not None:
            self.samples.append(self._read())

    def report(self) -> None:
        if len(self.samples) < 2:
            print("CPU and memory: psutil is not installed; not sampled")
            return
        first, last = self.samples[0], self.samples[-1]
        wall = last["t"] - first["t"]
        print(f"\nCPU (share of one core, mean over {wall:.0f}s) and RSS (max):")
        for role in ("worker", "web", "fleet", "instances", "postgres", "client"):
            if role not in last:
                continue
            cpu = (last[role][0] - first[role][0]) / wall
            rss = max(s[role][1] for s in self.samples if role in s)
            label = {
                "worker": "worker (celery, pool included)",
                "web": "web (uvicorn, workers included)",
                "fleet": "fleet agent (routers, control API)",
                "instances": "application instances (all)",
                "postgres": "Postgres (the bench database's backends)",
                "client": "this bench (users' traffic, polling)",
            }[role]
            memory = f"   RSS {rss / 2**20:8.1f} MiB" if rss else ""
            print(f"  {label:42} CPU {100 * cpu:6.1f}%{memory}")
        busy = (last["machine"][0] - first["machine"][0]) / wall
        loads = [s["load"] for s in self.samples]
        print(
            f"  the machine: {100 * busy / os.cpu_count():.0f}% of its {os.cpu_count()} cores busy "
            f"(everything on it), load average {min(loads):.1f}-{max(loads):.1f}"
        )


async def traffic(endpoints: list[str], rate: float, stop: asyncio.Event) -> dict:
    """Open-loop GETs through every router, ``rate`` per second each."""
    import aiohttp

    counts = {"ok": 0, "5xx": 0, "no answer": 0}
    interval = 1.0 / rate

    async def one(session, url):
        try:
            async with session.get(url) as response:
                await response.read()
                counts["ok" if response.status < 500 else "5xx"] += 1
        except (aiohttp.ClientError, TimeoutError):  # refused, reset, or 5 s without an answer
            counts["no answer"] += 1

    timeout = aiohttp.ClientTimeout(total=5)
    async with aiohttp.ClientSession(
        timeout=timeout, connector=aiohttp.TCPConnector(limit=256)
    ) as session:
        tasks: set = set()
        next_at = time.monotonic()
        while not stop.is_set():
            for url in endpoints:
                task = asyncio.create_task(one(session, url))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            next_at += interval
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
        await asyncio.gather(*tasks, return_exceptions=True)
    return counts


def rollouts(args) -> None:
    with stack("scale", workers=args.workers, threads=args.threads) as api:
        logs_dir = ROOT / "var" / "bench" / "scale" / "logs"
        names = [f"worker{n}" for n in range(args.workers)] if args.threads else ["worker"]
        logs = [logs_dir / f"{name}.log" for name in names]
        template = copy.deepcopy(TEMPLATE)
        template["metrics"][0]["interval"] = f"{args.interval:g}s"
        api("PUT", "/analysis-templates/scale-errors", template)
        slugs = [f"svc-{n:03d}" for n in range(args.targets)]
        for slug in slugs:
            create_service(api, slug, ["1.0.0", "2.0.0"], {"sample": {"latency_ms": 5}})
        started = time.monotonic()
        first = [api.deploy(slug, "prod", "1.0.0", FIRST)["id"] for slug in slugs]
        for pk in first:
            assert api.wait(pk, timeout=600)["state"] == "succeeded", f"first deploy {pk}"
        print(f"{len(slugs)} targets live on 1.0.0 in {time.monotonic() - started:.1f}s")
        endpoints = [
            api("GET", f"/services/{slug}/targets/prod")["endpoint"].rstrip("/") + "/"
            for slug in slugs
        ]
        offsets = [log.stat().st_size if log.exists() else 0 for log in logs]

        async def main():
            stop = asyncio.Event()
            load = asyncio.create_task(traffic(endpoints, args.rate, stop))
            await asyncio.sleep(2.0)  # both sides have requests before the canaries start
            with Sampler(api.database) as sampler:
                began = time.monotonic()
                ids = [
                    (await asyncio.to_thread(api.deploy, slug, "prod", "2.0.0", CANARY))["id"]
                    for slug in slugs
                ]
                submitted = time.monotonic() - began
                states: dict = {}
                last: dict = {}  # the latest view of each deployment
                deadline = time.monotonic() + args.timeout
                while len(states) < len(ids) and time.monotonic() < deadline:
                    for pk in ids:
                        if pk not in states:
                            last[pk] = d = await asyncio.to_thread(api, "GET", f"/deployments/{pk}")
                            if d["state"] in TERMINAL:
                                states[pk] = (d["state"], time.monotonic() - began)
                    await asyncio.sleep(0.5)
            stop.set()
            stuck = {pk: d for pk, d in last.items() if d["state"] != "succeeded"}
            runs = {
                pk: await asyncio.to_thread(api, "GET", f"/deployments/{pk}/analysis")
                for pk in stuck
            }
            return ids, states, submitted, await load, sampler, stuck, runs

        ids, states, submitted, counts, sampler, stuck, runs = asyncio.run(main())
        ticks = []
        for log, offset in zip(logs, offsets, strict=True):
            with open(log, encoding="utf-8", errors="replace") as fh:
                fh.seek(offset)
                ticks += [tuple(map(float, m.groups())) for m in LAG.finditer(fh.read())]
    done = [t for _, t in states.values()]
    outcomes: dict[str, int] = {}
    for state, _ in states.values():
        outcomes[state] = outcomes.get(state, 0) + 1
    print(
        f"\n{len(ids)} canaries with analysis, {args.workers} worker processes"
        + (f" of {args.threads} threads each" if args.threads else "")
        + ", "
        f"{args.rate:g} req/s through each of {len(endpoints)} routers, "
        f"a measurement every {args.interval:g}s:"
    )
    print(f"  all {len(ids)} submitted in {submitted:.1f}s; outcomes {outcomes}")
    if len(states) < len(ids):
        print(f"  NOT FINISHED after {args.timeout:.0f}s: {len(ids) - len(states)}")
    for pk, d in stuck.items():  # why each one that did not succeed did not
        print(f"  #{pk} {d['state']}: {d['reason'] or d['message']}")
        for run in runs[pk].get("items", []):
            print(f"    analysis {run['name']}: {run['phase']} {run['decision']}: {run['why']}")
    if done:
        print(
            f"  finished: first {min(done):.1f}s, median {statistics.median(done):.1f}s, "
            f"last {max(done):.1f}s; {60 * len(done) / max(done):.0f} rollouts per minute"
        )
    if ticks:
        lags, took, cpu = ([t[i] for t in ticks] for i in range(3))
        print(
            f"  tick lag (due -> started) over {len(lags)} ticks: "
            f"p50 {percentile(lags, 0.5):.0f} ms  p99 {percentile(lags, 0.99):.0f} ms  "
            f"max {max(lags):.0f} ms; {len(lags) / max(done or [1]):.0f} ticks a second"
        )
        print(
            f"  a tick took (wall): p50 {percentile(took, 0.5):.0f} ms  "
            f"p99 {percentile(took, 0.99):.0f} ms  mean {statistics.mean(took):.0f} ms; "
            f"its thread's CPU: mean {statistics.mean(cpu):.1f} ms"
        )
    else:
        print("  tick lag: no 'tick lag' lines in the worker log")
    print(
        f"  user traffic: {counts['ok']} answered, {counts['5xx'] + counts['no answer']} failed: "
        f"{counts['5xx']} with a 5xx, {counts['no answer']} with no answer (within 5 s; the "
        "client waits for one of its 256 connections inside that)"
    )
    sampler.report()


def dashboards(args) -> None:
    print(f"\nlive page: {args.dashboards} dashboards on one deployment (bench/ws.py)", flush=True)
    subprocess.run(
        [
            sys.executable,
            "bench/ws.py",
            "--clients",
            str(args.dashboards),
            "--rounds",
            "1",
            "--timeout",
            str(args.timeout),
        ],
        cwd=ROOT,
        check=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--targets", type=int)
    parser.add_argument("--workers", type=int, default=2, help="Celery worker processes")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="threads per worker process (default: what production runs, 8; ticks wait on I/O "
        "and threads overlap them); 0: one worker with --workers prefork pool processes",
    )
    parser.add_argument("--rate", type=float, default=5.0, help="req/s through each router")
    parser.add_argument(
        "--interval",
        type=float,
        default=1.0,
        help="seconds between an analysis' measurements (each is a tick of its canary)",
    )
    parser.add_argument("--dashboards", type=int)
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--skip-dashboards", action="store_true")
    args = parser.parse_args()
    if args.threads is None:  # what production runs
        args.threads = processes.worker_threads() if processes.worker_pool() == "threads" else 0
    args.targets = args.targets or (5 if args.quick else 100)
    args.dashboards = args.dashboards or (50 if args.quick else 1000)
    rollouts(args)
    if not args.skip_dashboards:
        dashboards(args)


if __name__ == "__main__":
    main()
