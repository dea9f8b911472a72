"""Rolling deploy + rollback under load, through the real stack, with figures printed.

    .venv/bin/python bench/rolling.py [--cycles 3] [--rate 200]

Starts (on loopback only) a fresh database, the fleet agent, a Celery worker and the web server,
registers a service through the REST API, then per cycle: deploys a new release with a rolling
strategy (4 replicas, batches of 1) while a client sends open-loop traffic through the router, and
rolls it back. Prints requests sent, failed requests (non-2xx or connection errors), rollout
durations, and the rollback latency as the client sees it: from the rollback API call returning
to the first moment after which every new request is answered by the old version.

The stack comes from bench/harness.py.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import FAST_HEALTH, create_service, percentile, stack  # noqa: E402
from integrations.local.traffic import Traffic, failures, settled_after  # noqa: E402

STRATEGY = {
    "kind": "rolling",
    "replicas": 4,
    "batch_size": 1,
    "max_surge": 1,
    "max_unavailable": 0,
    "min_ready": "300ms",
    "progress_deadline": "60s",
    "health": FAST_HEALTH,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=3)
    parser.add_argument("--rate", type=float, default=200.0, help="client requests/s")
    args = parser.parse_args()
    versions = ["1.0.0"] + [f"1.{i + 1}.0" for i in range(args.cycles)]
    with stack("rolling") as api:
        create_service(api, "bench", versions)
        api.wait(api.deploy("bench", "prod", "1.0.0", STRATEGY)["id"])
        endpoint = api("GET", "/services/bench/targets/prod")["endpoint"]
        rollout_s, rollback_s, settle_s, call_ms = [], [], [], []
        with Traffic(endpoint, rate=args.rate, threads=8) as traffic:
            time.sleep(1)
            for version in versions[1:]:
                started = time.monotonic()
                d = api.deploy("bench", "prod", version, STRATEGY)
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
    span = samples[-1].started - samples[0].started if samples else 1
    print(f"cycles                      {args.cycles}")
    print(
        f"requests                    {len(samples)} ({len(samples) / span:.0f}/s offered "
        f"{args.rate:.0f}/s)"
    )
    print(f"failed requests             {len(failures(samples))}")
    print(f"rolling deploy (4 x batch 1) median {statistics.median(rollout_s):.2f}s")
    print(f"rollback API call           median {statistics.median(call_ms):.0f}ms")
    print(f"rollback complete           median {statistics.median(rollback_s):.2f}s")
    print(
        "rollback -> every new request on the old version: "
        f"p50 {1000 * percentile(settle_s, 0.5):.0f}ms  max {1000 * max(settle_s):.0f}ms"
    )


if __name__ == "__main__":
    main()
