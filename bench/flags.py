"""Flag evaluation throughput and the kill switch's reach, against a real web server.

    .venv/bin/python bench/flags.py [--seconds 10] [--threads 8] [--web-workers 2]

Starts a fresh installation (``harness``: its own database beside DATABASE_URL's) with the web
server only (uvicorn, ``--web-workers`` processes), creates 40 flags with rollouts, constraints
and variants through the REST API and an SDK token, then prints:

- OFREP single-flag evaluations per second with ``--threads`` concurrent clients, and the
  latency p50 / p99; the same for the bulk endpoint (40 flags per call) and for Unleash's
  ``GET /api/client/features`` (full document, and 304 with If-None-Match);
- kill switch -> a client sees it: the time from the kill's API answer to an OFREP client's
  next answer being ``false``, and to the real ``UnleashClient`` (polling every second) seeing
  it, over several kills.

Figures depend on the machine's load: run it on a quiet machine for the note.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import harness  # noqa: E402
from switchyard import processes  # noqa: E402
from tests.flags import generated  # noqa: E402


def setup(api: harness.Api) -> str:
    api("POST", "/environments", {"slug": "prod", "name": "Prod", "order": 1})
    payload = generated.payload(features=40)
    ids = {}
    for s in payload["segments"]:
        ids[s["id"]] = api("PUT", f"/segments/{s['name']}", {"constraints": s["constraints"]})["id"]
    for f in payload["features"]:
        api("POST", "/flags", {"key": f["name"]})
        for s in f["strategies"]:
            s["segments"] = [ids[i] for i in s["segments"]]
            for v in s["variants"]:
                v.pop("overrides", None)
        api(
            "PUT",
            f"/flags/{f['name']}/environments/prod",
            {"strategies": f["strategies"], "variants": f["variants"], "enabled": f["enabled"]},
        )
    api("POST", "/flags", {"key": "bench-kill"})
    api("PUT", "/flags/bench-kill/environments/prod", {"enabled": True})
    return api("POST", "/sdk-tokens", {"environment": "prod", "name": "bench"})["token"]


def load(name, seconds, threads, call) -> None:
    latencies: list[float] = []
    errors = [0]
    stop = time.monotonic() + seconds
    lock = threading.Lock()

    def worker(i):
        with httpx.Client(timeout=10) as client:
            n = 0
            mine = []
            while time.monotonic() < stop:
                t = time.perf_counter()
                ok = call(client, i, n)
                mine.append(time.perf_counter() - t)
                n += 1
                if not ok:
                    errors[0] += 1
            with lock:
                latencies.extend(mine)

    started = time.monotonic()
    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    elapsed = time.monotonic() - started
    p50 = harness.percentile(latencies, 0.5) * 1000
    p99 = harness.percentile(latencies, 0.99) * 1000
    print(
        f"{name:<42} {len(latencies) / elapsed:8.0f} req/s   p50 {p50:6.1f} ms   "
        f"p99 {p99:6.1f} ms   errors {errors[0]}",
        flush=True,
    )


def kill_reach(base: str, api: harness.Api, sdk_token: str, rounds: int = 5) -> None:
    from UnleashClient import UnleashClient

    cache = tempfile.mkdtemp()
    client = UnleashClient(
        url=f"{base}/api",
        app_name="bench",
        refresh_interval=1,
        disable_metrics=True,
        disable_registration=True,
        custom_headers={"Authorization": sdk_token},
        cache_directory=cache,
        request_timeout=5,
    )
    client.initialize_client()
    ofrep = httpx.Client(base_url=base, timeout=5, headers={"Authorization": f"Bearer {sdk_token}"})
    url = "/ofrep/v1/evaluate/flags/bench-kill"
    ofrep_times, sdk_times = [], []
    try:
        for _ in range(rounds):
            generated.wait_for(lambda: client.is_enabled("bench-kill", {"userId": "u"}), 10, 0.01)
            api("POST", "/flags/bench-kill/environments/prod/kill", {"reason": "bench"})
            killed = time.perf_counter()
            while ofrep.post(url, json={"context": {"targetingKey": "u"}}).json()["value"]:
                pass
            ofrep_times.append(time.perf_counter() - killed)
            while client.is_enabled("bench-kill", {"userId": "u"}):
                time.sleep(0.005)
            sdk_times.append(time.perf_counter() - killed)
            api("POST", "/flags/bench-kill/environments/prod/restore")
    finally:
        client.destroy()
        shutil.rmtree(cache, ignore_errors=True)
    print(
        f"kill switch -> OFREP client sees it: max {max(ofrep_times) * 1000:.1f} ms "
        f"over {rounds} kills (the next request)"
    )
    print(
        f"kill switch -> UnleashClient (polls every 1 s) sees it: "
        f"median {sorted(sdk_times)[len(sdk_times) // 2]:.2f} s, max {max(sdk_times):.2f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--web-workers", type=int, default=2)
    args = parser.parse_args()

    original = processes.web_command
    processes.web_command = lambda port, host="127.0.0.1": [
        *original(port, host),
        "--workers",
        str(args.web_workers),
    ]
    with harness.stack("flags", workers=1) as api:
        base = str(api.client.base_url).rstrip("/").removesuffix("/api/v1")
        sdk_token = setup(api)
        auth = {"Authorization": f"Bearer {sdk_token}"}
        contexts = list(generated.contexts(count=500))

        def single(client, i, n):
            ctx = contexts[(i * 7919 + n) % len(contexts)]
            body = {"context": {"targetingKey": ctx.get("userId", "anon"), **ctx["properties"]}}
            r = client.post(
                f"{base}/ofrep/v1/evaluate/flags/flag-{n % 40}", json=body, headers=auth
            )
            return r.status_code == 200

        def bulk(client, i, n):
            ctx = contexts[(i * 7919 + n) % len(contexts)]
            body = {"context": {"targetingKey": ctx.get("userId", "anon"), **ctx["properties"]}}
            return (
                client.post(f"{base}/ofrep/v1/evaluate/flags", json=body, headers=auth).status_code
                == 200
            )

        etag = httpx.get(
            f"{base}/api/client/features", headers={"Authorization": sdk_token}
        ).headers["ETag"]

        def features(client, i, n):
            return (
                client.get(
                    f"{base}/api/client/features", headers={"Authorization": sdk_token}
                ).status_code
                == 200
            )

        def features_304(client, i, n):
            return (
                client.get(
                    f"{base}/api/client/features",
                    headers={"Authorization": sdk_token, "If-None-Match": etag},
                ).status_code
                == 304
            )

        print(
            f"{args.threads} client threads, {args.web_workers} uvicorn workers, "
            f"{args.seconds:.0f} s each",
            flush=True,
        )
        load("OFREP single flag (evaluations)", args.seconds, args.threads, single)
        load("OFREP bulk, 41 flags per call", args.seconds, args.threads, bulk)
        load("Unleash GET /api/client/features", args.seconds, args.threads, features)
        load("Unleash features, If-None-Match -> 304", args.seconds, args.threads, features_304)
        kill_reach(base, api, sdk_token)


if __name__ == "__main__":
    main()
