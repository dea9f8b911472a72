"""What the flags' part of /metrics costs a scrape, against a real web server.

    .venv/bin/python bench/flag_metrics.py [--flags 50] [--minutes 1440] [--scrapes 20]

Starts a fresh installation (``harness``), creates ``--flags`` flags with two variants through
the REST API and an SDK token, then reports their evaluation counts the way an Unleash SDK does
(``POST /api/client/metrics``), one report per minute over ``--minutes`` minutes (every flag in
every report: ``flags x minutes`` counted rows), and prints the time of ``GET /metrics``
(p50 / p99 over ``--scrapes`` scrapes), its size and how many flag samples it holds.

Figures depend on the machine's load: run it on a quiet machine for the note.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import harness  # noqa: E402

VARIANTS = [
    {"name": "blue", "weight": 500, "weightType": "variable", "stickiness": "default"},
    {"name": "green", "weight": 500, "weightType": "variable", "stickiness": "default"},
]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--flags", type=int, default=50)
    parser.add_argument("--minutes", type=int, default=1440)
    parser.add_argument("--scrapes", type=int, default=20)
    args = parser.parse_args()
    with harness.stack("flag-metrics", workers=1) as api:
        api("POST", "/environments", {"slug": "prod", "name": "Prod", "order": 1})
        keys = [f"bench-{i:03d}" for i in range(args.flags)]
        for key in keys:
            api("POST", "/flags", {"key": key, "kind": "string", "default_value": "red"})
            api("PUT", f"/flags/{key}/environments/prod", {"enabled": True, "variants": VARIANTS})
        token = api("POST", "/sdk-tokens", {"environment": "prod", "name": "bench"})["token"]
        base = str(api.client.base_url).removesuffix("/").removesuffix("/api/v1")
        start = datetime.now(UTC) - timedelta(minutes=args.minutes)
        toggles = {k: {"yes": 9, "no": 1, "variants": {"blue": 4, "green": 5}} for k in keys}
        t0 = time.perf_counter()
        with httpx.Client(timeout=30, headers={"Authorization": token}) as client:
            for m in range(args.minutes):
                stop = (start + timedelta(minutes=m)).isoformat()
                bucket = {"start": stop, "stop": stop, "toggles": toggles}
                answer = client.post(
                    f"{base}/api/client/metrics", json={"appName": "bench", "bucket": bucket}
                )
                answer.raise_for_status()
        print(
            f"reported {args.flags} flags x {args.minutes} minutes "
            f"in {time.perf_counter() - t0:.1f} s",
            flush=True,
        )
        times, size, samples = [], 0, 0
        with httpx.Client(timeout=60) as client:
            for _ in range(args.scrapes):
                t = time.perf_counter()
                answer = client.get(f"{base}/metrics")
                times.append(time.perf_counter() - t)
                answer.raise_for_status()
                size = len(answer.content)
                samples = sum(
                    1 for line in answer.text.splitlines() if line.startswith("switchyard_flag_")
                )
        p50, p99 = harness.percentile(times, 0.5), harness.percentile(times, 0.99)
        print(
            f"GET /metrics over {args.flags * args.minutes} counted minutes: "
            f"p50 {p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms, {size / 1024:.1f} KiB, "
            f"{samples} flag samples"
        )


if __name__ == "__main__":
    main()
