"""A soak: rollouts one after another with traffic, printing memory over time.

    .venv/bin/python bench/soak.py [--minutes 60] [--targets 4] [--every 30]

Starts the stack of ``bench/harness.py`` (fleet agent, Celery worker with 2 pool processes,
beat, the web server as production runs it; fresh database, loopback only), creates
``--targets`` services on the local fleet with traffic through every router (``--rate`` req/s
each, with a mirror route copying a share to the canary), and for ``--minutes`` deploys a new
version to each target in turn: a canary with an analysis step, each release a new version, so
every bound in docs/retention.md is exercised (new instance series and retired ones, per-version
totals, mirrored copies, chart samples in Redis, measurements, events). Every ``--every`` seconds
it prints the RSS of the worker, the web server and the fleet agent (each with its children,
the agent without the application instances), the instances' RSS, Redis' ``used_memory`` and key
count, and the rollouts so far; at the end the growth of each between the first and the last
third of the run. Bounded memory shows as a flat line after warm-up. Clients and servers share
this machine.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.harness import FAST_HEALTH, TERMINAL, create_service, stack  # noqa: E402
from bench.scale import TEMPLATE, Sampler, traffic  # noqa: E402

FIRST = {"kind": "rolling", "replicas": 1, "batch_size": "100%", "health": FAST_HEALTH}
CANARY = {
    "kind": "canary",
    "steps": [
        {"set_weight": 20},
        {
            "set_mirror_route": {
                "name": "copy",
                "percentage": 50,
                "match": [{"path": {"prefix": "/"}}],
            }
        },
        {"analysis": {"template": "scale-errors"}},
        {"set_weight": 60},
    ],
    "stable_replicas": 1,
    "canary_replicas": 1,
    "health": FAST_HEALTH,
}


def redis_figures(url: str) -> tuple[float, int]:
    """Redis' used memory (MiB) and key count: the stack's own Redis (REDIS_URL's database when
    set -- other users of that server count too -- else the embedded one under var/)."""
    import redis

    client = redis.Redis.from_url(url)
    return client.info("memory")["used_memory"] / 2**20, client.dbsize()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--targets", type=int, default=4)
    parser.add_argument("--rate", type=float, default=20.0, help="req/s through each router")
    parser.add_argument("--every", type=float, default=30.0, help="seconds between lines")
    args = parser.parse_args()

    with stack("soak", workers=2) as api:
        api("PUT", "/analysis-templates/scale-errors", TEMPLATE)
        slugs = [f"soak-{n}" for n in range(args.targets)]
        for slug in slugs:
            create_service(api, slug, ["1.0.0"], {"sample": {"latency_ms": 5}})
        for pk in [api.deploy(slug, "prod", "1.0.0", FIRST)["id"] for slug in slugs]:
            assert api.wait(pk, timeout=300)["state"] == "succeeded"
        endpoints = [
            api("GET", f"/services/{slug}/targets/prod")["endpoint"].rstrip("/") + "/"
            for slug in slugs
        ]
        rows: list[dict] = []

        async def run():
            stop = asyncio.Event()
            load = asyncio.create_task(traffic(endpoints, args.rate, stop))
            sampler = Sampler()
            end = time.monotonic() + 60 * args.minutes
            started = time.monotonic()
            next_line = started
            active: dict[str, int] = {}
            version = {slug: 0 for slug in slugs}
            outcomes: dict[str, int] = {}
            print(
                f"{'min':>6} {'worker MiB':>11} {'web MiB':>9} {'fleet MiB':>10} "
                f"{'apps MiB':>9} {'redis MiB':>10} {'keys':>6} {'rollouts':>9}",
                flush=True,
            )
            while time.monotonic() < end:
                for slug in slugs:
                    pk = active.get(slug)
                    if pk is not None:
                        d = await asyncio.to_thread(api, "GET", f"/deployments/{pk}")
                        if d["state"] not in TERMINAL:
                            continue
                        outcomes[d["state"]] = outcomes.get(d["state"], 0) + 1
                    version[slug] += 1
                    v = f"2.{version[slug]}.0"
                    body = {"version": v, "artifact": {"sample": {"latency_ms": 5}}}
                    await asyncio.to_thread(api, "POST", f"/services/{slug}/releases", body)
                    d = await asyncio.to_thread(api.deploy, slug, "prod", v, CANARY)
                    active[slug] = d["id"]
                if time.monotonic() >= next_line:
                    sample = sampler._read()  # noqa: SLF001
                    figures = redis_figures(api.redis_url)
                    row = {
                        "min": (time.monotonic() - started) / 60,
                        **{
                            r: sample[r][1] / 2**20
                            for r in ("worker", "web", "fleet")
                            if r in sample
                        },
                        "apps": sample.get("instances", (0, 0))[1] / 2**20,
                        "redis": figures[0],
                        "keys": figures[1],
                        "rollouts": sum(outcomes.values()),
                    }
                    rows.append(row)
                    print(
                        f"{row['min']:6.1f} {row.get('worker', 0):11.1f} {row.get('web', 0):9.1f} "
                        f"{row.get('fleet', 0):10.1f} {row['apps']:9.1f} {row['redis']:10.1f} "
                        f"{row['keys']:6d} {row['rollouts']:9d}",
                        flush=True,
                    )
                    next_line += args.every
                await asyncio.sleep(0.5)
            stop.set()
            return outcomes, await load

        outcomes, counts = asyncio.run(run())
    print(f"\nrollouts finished: {outcomes}; user traffic {counts}")
    if len(rows) >= 3:
        third = max(1, len(rows) // 3)
        print("growth, mean of the last third minus the first third of the lines:")
        for key in ("worker", "web", "fleet", "apps", "redis", "keys"):
            first = [r[key] for r in rows[:third] if key in r]
            last = [r[key] for r in rows[-third:] if key in r]
            if first and last:
                delta = statistics.mean(last) - statistics.mean(first)
                unit = "" if key == "keys" else " MiB"
                print(f"  {key:7} {delta:+9.1f}{unit}")


if __name__ == "__main__":
    main()
