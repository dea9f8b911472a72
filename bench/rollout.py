"""Blue-green swaps, canary ladders and rollbacks under steady load, through the real stack.

    .venv/bin/python bench/rollout.py [--cycles 20] [--rate 200] [--window 300] [--redeploy]

Starts the stack on loopback (bench/harness.py), drives open-loop load through the router and runs
N cycles of: a rolling deploy; a blue-green deploy switched back within its scale-down delay; a
canary ladder aborted at 50%; a canary ladder promoted to 100%; a rollback of that succeeded
deployment inside its rollback window (``--window`` seconds on the environment, docs/loop.md: a
switch back to the previous release, still warm). With ``--redeploy``, each cycle also promotes a
canary again, ends its window early and rolls it back outside the window (a redeploy, timed
apart: it is not a switch). Prints total and failed requests (any non-2xx or connection error),
the rollback latency p50/p95/p99 as the client sees it (the API call returns -> the first moment
after which every new request is served by the stable version) for every kind of rollback
together and per kind, and requests that reached the old side after a blue-green switch had
completed.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import FAST_HEALTH, create_service, percentile, stack  # noqa: E402
from integrations.local.traffic import Traffic, failures, settled_after  # noqa: E402

ROLLING = {
    "kind": "rolling",
    "replicas": 4,
    "batch_size": 2,
    "max_surge": 2,
    "max_unavailable": 0,
    "min_ready": "200ms",
    "health": FAST_HEALTH,
}
BLUE_GREEN = {
    "kind": "blue_green",
    "replicas": 4,
    "preview_replicas": 1,
    "smoke": [{"path": "/health", "status": 200}, {"path": "/version", "status": 200}],
    "auto_promote": "500ms",
    "scale_down_delay": "60s",
    "health": FAST_HEALTH,
}
LADDER = [{"set_weight": 10}, {"pause": {"duration": "1s"}}, {"set_weight": 50}]
CANARY_ABORT = {
    "kind": "canary",
    "stable_replicas": 4,
    "steps": [*LADDER, {"pause": {}}],
    "health": FAST_HEALTH,
}
CANARY_PROMOTE = {
    "kind": "canary",
    "stable_replicas": 4,
    "steps": [*LADDER, {"pause": {"duration": "1s"}}, {"set_weight": 100}],
    "health": FAST_HEALTH,
}


# the kinds timed together (the figure of issue 18: p99 < 300 ms); a redeploy is timed apart
TOGETHER = ("switch back", "abort", "rollback in window")


class Cycle:
    def __init__(self, api, traffic, *, redeploy: bool = False):
        self.api = api
        self.traffic = traffic
        self.redeploy = redeploy
        self.latency: dict[str, list[float]] = {kind: [] for kind in TOGETHER}
        if redeploy:
            self.latency["redeploy (outside window)"] = []
        self.after_switch_on_old = 0
        self.call_ms: list[float] = []

    def settle(self, kind: str, returned: float, version: str) -> None:
        time.sleep(1.0)
        value = settled_after(self.traffic.snapshot(), returned, version)
        self.latency[kind].append(value if value is not None else math.inf)

    def command(self, deployment_id: int, name: str) -> tuple[dict, float]:
        body = {"reason": "bench"}
        called = time.monotonic()
        result = self.api("POST", f"/deployments/{deployment_id}/{name}", body)
        returned = time.monotonic()
        self.call_ms.append(1000 * (returned - called))
        return result, returned

    def run(self, stable: str, new: str) -> None:
        api = self.api
        d = api.deploy("bench", "prod", stable, ROLLING)
        assert api.wait(d["id"])["state"] == "succeeded", d

        d = api.deploy("bench", "prod", new, BLUE_GREEN)
        switched = self.wait_switched(d["id"])
        time.sleep(0.5)
        old_after_switch = [
            s for s in self.traffic.snapshot() if s.started > switched and s.version == stable
        ]
        self.after_switch_on_old += len(old_after_switch)
        _, returned = self.command(d["id"], "rollback")
        assert api.wait(d["id"])["state"] == "rolled_back"
        self.settle("switch back", returned, stable)

        d = api.deploy("bench", "prod", new, CANARY_ABORT)
        api.wait(d["id"], states={"paused"})
        _, returned = self.command(d["id"], "abort")
        assert api.wait(d["id"])["state"] == "aborted"
        self.settle("abort", returned, stable)

        d = api.deploy("bench", "prod", new, CANARY_PROMOTE)
        assert api.wait(d["id"])["state"] == "succeeded"
        self.wait_warm(d["id"])
        back, returned = self.command(d["id"], "rollback")
        assert back["strategy"]["kind"] == "blue_green", back  # a switch back
        assert api.wait(back["id"])["state"] == "succeeded"
        self.settle("rollback in window", returned, stable)

        if self.redeploy:
            d = api.deploy("bench", "prod", new, CANARY_PROMOTE)
            assert api.wait(d["id"])["state"] == "succeeded"
            self.wait_warm(d["id"])
            self.api("POST", f"/deployments/{d['id']}/end-window", {"reason": "bench"})
            self.wait_cold()
            back, returned = self.command(d["id"], "rollback")
            assert api.wait(back["id"])["state"] == "succeeded"
            self.settle("redeploy (outside window)", returned, stable)

    def wait_warm(self, deployment_id: int, timeout: float = 30) -> None:
        """Until the target's rollback window of ``deployment_id`` is open and its slot ready."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            target = self.api("GET", "/services/bench/targets/prod")
            window = target["rollback_window"]
            slot = target["slots"].get(window["slot"] or "", {})
            if window["deployment"] == deployment_id and slot.get("ready", 0) >= 4:
                return
            time.sleep(0.05)
        raise TimeoutError(f"the rollback window of {deployment_id} did not open: {window}")

    def wait_cold(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.api("GET", "/services/bench/targets/prod")["rollback_window"]["open"]:
                return
            time.sleep(0.05)
        raise TimeoutError("the rollback window did not end")

    def wait_switched(self, deployment_id: int, timeout: float = 60) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            d = self.api("GET", f"/deployments/{deployment_id}")
            if d["weights"].get("canary") == 100:
                return time.monotonic()
            if d["state"] not in ("pending", "progressing"):
                raise RuntimeError(f"blue-green deployment ended before the switch: {d}")
            time.sleep(0.05)
        raise TimeoutError("blue-green switch did not happen")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=20)
    parser.add_argument("--rate", type=float, default=200.0, help="client requests/s")
    parser.add_argument(
        "--window", type=int, default=300, help="the environment's rollback window, seconds"
    )
    parser.add_argument(
        "--redeploy", action="store_true", help="also time a rollback outside the window"
    )
    args = parser.parse_args()
    versions = [f"{n}.0.0" for n in range(1, 2 * args.cycles + 2)]
    started = time.monotonic()
    with stack("rollout", workers=2) as api:
        create_service(api, "bench", versions)
        api("PATCH", "/environments/prod", {"rollback_window": args.window})
        api.wait(api.deploy("bench", "prod", versions[0], ROLLING)["id"])
        endpoint = api("GET", "/services/bench/targets/prod")["endpoint"]
        with Traffic(endpoint, rate=args.rate, threads=8) as traffic:
            cycle = Cycle(api, traffic, redeploy=args.redeploy)
            for n in range(args.cycles):
                stable, new = versions[2 * n + 1], versions[2 * n + 2]
                cycle.run(stable, new)
                print(f"cycle {n + 1}/{args.cycles} done", flush=True)
        samples = traffic.samples
    span = samples[-1].started - samples[0].started if samples else 1
    every = [v for kind in TOGETHER for v in cycle.latency[kind]]
    print()
    print(f"cycles                        {args.cycles} in {time.monotonic() - started:.0f}s")
    print(f"requests                      {len(samples)} ({len(samples) / span:.0f}/s)")
    print(f"failed requests               {len(failures(samples))}")
    print(f"old side after a switch       {cycle.after_switch_on_old} requests")
    print(f"rollback window               {args.window}s")
    print(
        "every rollback together       "
        f"p50 {1000 * percentile(every, 0.5):.0f}ms  p95 {1000 * percentile(every, 0.95):.0f}ms  "
        f"p99 {1000 * percentile(every, 0.99):.0f}ms  (n={len(every)}: {', '.join(TOGETHER)})"
    )
    print(
        f"  (the API call itself         p50 {percentile(cycle.call_ms, 0.5):.0f}ms  "
        f"p99 {percentile(cycle.call_ms, 0.99):.0f}ms)"
    )
    for kind, values in cycle.latency.items():
        print(
            f"  {kind:<27} p50 {1000 * percentile(values, 0.5):.0f}ms  "
            f"p99 {1000 * percentile(values, 0.99):.0f}ms  max {1000 * max(values):.0f}ms"
        )


if __name__ == "__main__":
    main()
