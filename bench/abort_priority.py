"""Abort latency while slow ticks occupy the default workers: one shared worker pool versus a
worker of its own for the priority queue.

    .venv/bin/python bench/abort_priority.py [--slow 20] [--aborts 4] [--delay 4]

For each layout it starts the stack on loopback (bench/harness.py: fresh database, fleet agent,
beat, web) with a slowing proxy in front of the fleet agent for the workers
(``integrations.local.slow_proxy``), lines up ``--aborts`` canaries paused at 50% on fast targets,
then starts ``--slow`` rolling deployments on targets whose every change takes ``--delay``
seconds -- their ticks occupy the default workers -- and aborts the canaries one by one. The
abort latency is what the client sees: the abort API call returns -> the first moment after which
every new request is served by the stable release (open-loop traffic through each canary's
router). Three aborts with no slow ticks are measured first in each layout (the idle figure).

Layouts: ``shared`` is the old one, ``-Q priority,default -c 2`` (priority was only queue order
inside one pool); ``separate`` is what the demo and docker-compose.yml run now, ``-Q default -c
2`` plus ``-Q priority -c 1``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import (  # noqa: E402
    FAST_HEALTH,
    PAUSED_CANARY,
    RECREATE,
    ROOT,
    Api,
    _environment,
    bootstrap,
    command_latency,
    percentile,
    start_fleet,
    start_web,
)
from integrations.local.slow_proxy import SlowProxy  # noqa: E402
from switchyard import processes  # noqa: E402

SLOW_ROLLING = {
    "kind": "rolling",
    "replicas": 2,
    "batch_size": 1,
    "min_ready": "0s",
    "progress_deadline": "600s",
    "health": FAST_HEALTH,
}
IDLE = 3  # aborts measured before the slow ticks start (the first warms the worker up)
LAYOUTS = {
    "shared": [("worker", "priority,default", 2)],
    "separate": [("worker", "default", 2), ("worker-priority", "priority", 1)],
}


@contextmanager
def stack(layout: str, delay: float):
    var = ROOT / "var" / "bench" / f"abort-{layout}"
    shutil.rmtree(var, ignore_errors=True)
    var.mkdir(parents=True)
    env, redis = _environment(var)
    fleet_url = env["FLEET_URL"]
    supervisor = processes.Supervisor(env=env, log_dir=var / "logs")
    proxy = SlowProxy(fleet_url, delay=0.0, keys=lambda key: key.startswith("slow-"))
    try:
        token = bootstrap(env)
        start_fleet(supervisor, env)
        proxy.__enter__()
        supervisor.env = {**env, "FLEET_URL": proxy.url}
        for name, queues, concurrency in LAYOUTS[layout]:
            command = processes.worker_command(concurrency=concurrency, queues=queues, name=name)
            supervisor.start(name, command)
        supervisor.start("beat", processes.beat_command(var / "beat-schedule"))
        base = start_web(supervisor)
        print(f"[{layout}] stack up: {base} (logs in {var / 'logs'})", flush=True)
        yield Api(base, token), proxy
    finally:
        proxy.__exit__(None, None, None)
        supervisor.stop()
        if redis is not None:
            redis.stop()


def service(api: Api, slug: str) -> str:
    api("POST", "/services", {"slug": slug, "name": slug})
    api("PUT", f"/services/{slug}/targets/prod", {"provider": "local", "config": {}})
    for version in ("1.0.0", "2.0.0"):
        body = {"version": version, "artifact": {"sample": {"latency_ms": 2}}}
        api("POST", f"/services/{slug}/releases", body)
    return slug


def deploy(api: Api, slug: str, version: str, spec: dict) -> dict:
    return api.deploy(slug, "prod", version, spec)


def abort_latency(api: Api, slug: str, deployment_id: int) -> tuple[float, int]:
    latency, failed, _ = command_latency(api, slug, deployment_id, "abort", timeout=180)
    return latency, failed


def run(layout: str, slow: int, aborts: int, delay: float) -> dict:
    with stack(layout, delay) as (api, proxy):
        api("POST", "/environments", {"slug": "prod", "name": "Prod", "order": 1})
        fast = [service(api, f"fast-{n}") for n in range(aborts + IDLE)]
        slowed = [service(api, f"slow-{n}") for n in range(slow)]
        firsts = [deploy(api, s, "1.0.0", RECREATE) for s in fast + slowed]
        for d in firsts:
            assert api.wait(d["id"], timeout=300)["state"] == "succeeded", d
        canaries = [deploy(api, s, "2.0.0", PAUSED_CANARY) for s in fast]
        for d in canaries:
            api.wait(d["id"], states={"paused"}, timeout=120)
        baseline, failed = [], 0
        for slug, d in zip(fast[:IDLE], canaries[:IDLE], strict=True):
            latency, lost = abort_latency(api, slug, d["id"])
            baseline.append(latency)
            failed += lost
        proxy.delay = delay
        busy = [deploy(api, s, "2.0.0", SLOW_ROLLING) for s in slowed]
        time.sleep(delay / 2)  # the slow ticks have the default workers now
        loaded = []
        for slug, d in zip(fast[IDLE:], canaries[IDLE:], strict=True):
            latency, lost = abort_latency(api, slug, d["id"])
            loaded.append(latency)
            failed += lost
        held = proxy.held
        for d in busy:
            api("POST", f"/deployments/{d['id']}/abort", {"reason": "bench over"})
        proxy.delay = 0.0
    return {"baseline": baseline, "loaded": loaded, "failed": failed, "held": held}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--slow", type=int, default=20, help="slow deployments at once")
    parser.add_argument("--aborts", type=int, default=4, help="aborts measured under load")
    # below the fleet client's 5 s read timeout: the slow ticks succeed, slowly
    parser.add_argument("--delay", type=float, default=4.0, help="seconds per slowed change")
    parser.add_argument("--layout", choices=[*LAYOUTS, "both"], default="both")
    args = parser.parse_args()
    layouts = list(LAYOUTS) if args.layout == "both" else [args.layout]
    results = {layout: run(layout, args.slow, args.aborts, args.delay) for layout in layouts}
    print(f"\nabort latency (API call returned -> every new request on 1.0.0), {args.slow} slow")
    print(f"deployments holding the default workers, each change to them held {args.delay:g}s:")
    for layout, r in results.items():
        loaded, idle = r["loaded"], r["baseline"]
        print(
            f"  {layout:9s} idle p50 {1000 * percentile(idle, 0.5):6.0f} ms (of {len(idle)}) | "
            f"under load p50 "
            f"{1000 * percentile(loaded, 0.5):7.0f} ms, max {1000 * max(loaded):7.0f} ms "
            f"({len(loaded)} aborts) | failed requests {r['failed']} | slowed changes {r['held']}"
        )


if __name__ == "__main__":
    main()
