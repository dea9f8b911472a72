"""Mirror overhead on the users' latency (a dark launch): p50/p99 through the local router with
and without a mirror route copying every request to the canary slot (whose answers are then
compared with the users', ``integrations.local.darklaunch``).

    .venv/bin/python bench/dark_launch.py [--requests 2000] [--concurrency 4] [--rounds 3]

Starts a real fleet agent (loopback only), one target with a stable slot and a canary slot (the
sample app, one instance each), then alternates rounds without and with the mirror route
(100 %), ``--requests`` GETs per round from ``--concurrency`` clients, and prints each mode's
p50/p99 over all its rounds, and the router's comparison counters. Figures depend on the
machine's load: alternating rounds spreads the load over both modes.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from integrations.local.process import start_agent  # noqa: E402
from tests.integrations.fleet_helpers import Control  # noqa: E402

KEY = "bench.dark"
EVERYTHING = [{"name": "all", "percentage": 100, "match": []}]


async def round_of(url: str, requests: int, concurrency: int) -> list[float]:
    times: list[float] = []
    left = [requests]
    async with httpx.AsyncClient(timeout=10) as client:

        async def worker():
            while left[0] > 0:
                left[0] -= 1
                started = time.perf_counter()
                answer = await client.get(url)
                times.append(time.perf_counter() - started)
                assert answer.status_code == 200, answer.status_code

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return times


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    log = ROOT / "var" / "bench" / "dark-launch-agent.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with start_agent(log_path=log) as agent:
        control = Control(agent)
        endpoint = control.create_target(KEY)
        control.ensure(KEY, "blue", "1.0", 1)
        control.ensure(KEY, "green", "2.0", 1)
        control.wait_ready(KEY, "blue", 1)
        control.wait_ready(KEY, "green", 1)
        base = {"stable_slot": "blue", "canary_slot": "green"}
        times: dict[str, list[float]] = {"without mirroring": [], "mirroring 100 %": []}
        for _ in range(args.rounds):
            for mode, routes in (("without mirroring", None), ("mirroring 100 %", EVERYTHING)):
                control.set_routing(KEY, {"blue": 100, "green": 0}, mirror_routes=routes, **base)
                times[mode] += asyncio.run(
                    round_of(endpoint + "/", args.requests, args.concurrency)
                )
        print(
            f"{args.rounds} rounds x {args.requests} GETs per mode, {args.concurrency} clients, "
            "sample app, one instance per slot"
        )
        for mode, values in times.items():
            print(
                f"{mode:<20} p50 {quantile(values, 0.5) * 1000:6.2f} ms   "
                f"p99 {quantile(values, 0.99) * 1000:6.2f} ms   ({len(values)} requests)"
            )
        dark = control.metrics_json()["targets"][KEY]["dark_launch"]
        print(
            f"compared {dark['compared']}, status mismatches {dark['status_mismatches']}, "
            f"body mismatches {dark['body_mismatches']} (the bodies name the version and "
            f"instance), mirror errors {dark['mirror_errors']}"
        )
        control.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
