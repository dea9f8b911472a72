"""The sample application the local fleet runs by default, with faults it can be told to inject.

    python -m integrations.local.sample_app --port 8000 --version 1.4.2 \
        --config '{"error_rate": 0.2, "latency_ms": 150}'

``/health`` answers ``ok`` (or 500 when ``health`` is ``fail``), ``/version`` the version as text,
and every other path a JSON ``{"version", "instance", "path"}`` (500 for the ``error_rate`` share
of them, after ``latency_ms`` +/- ``latency_jitter_ms``). On SIGTERM it stops accepting, finishes
the requests in flight, and exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import sys

from aiohttp import web

from integrations.local.faults import Faults, parse_faults
from integrations.local.loops import use_fleet_loop


def make_app(version: str, instance: str, faults: Faults) -> web.Application:
    async def health(request: web.Request) -> web.Response:
        if faults.health_fails:
            return web.Response(status=500, text="fail")
        return web.Response(text="ok")

    async def show_version(request: web.Request) -> web.Response:
        return web.Response(text=version)

    async def index(request: web.Request) -> web.Response:
        if faults.latency_ms or faults.latency_jitter_ms:
            jitter = random.uniform(-faults.latency_jitter_ms, faults.latency_jitter_ms)
            await asyncio.sleep(max(0.0, faults.latency_ms + jitter) / 1000)
        body = {"version": version, "instance": instance, "path": request.path}
        if faults.error_rate and random.random() < faults.error_rate:
            return web.json_response({**body, "error": "injected failure"}, status=500)
        return web.json_response(body)

    app = web.Application()
    app.router.add_get("/health", health)
    app.router.add_get("/version", show_version)
    app.router.add_route("*", "/{tail:.*}", index)
    return app


def _log(instance: str, message: str) -> None:
    print(f"sample_app[{instance}]: {message}", file=sys.stderr, flush=True)


async def serve(host: str, port: int, version: str, instance: str, faults: Faults) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)

    if faults.start_delay:
        try:
            await asyncio.wait_for(stop.wait(), faults.start_delay)
            return 0  # told to stop before it even started
        except TimeoutError:
            pass

    runner = web.AppRunner(
        make_app(version, instance, faults),
        handle_signals=False,
        access_log=None,
        shutdown_timeout=30,
    )
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    _log(instance, f"version {version} listening on {host}:{port}")

    if faults.crash_after is not None:

        def crash() -> None:
            _log(instance, f"crashing as configured (crash_after={faults.crash_after:g}s)")
            os._exit(1)

        loop.call_later(faults.crash_after, crash)

    await stop.wait()
    _log(instance, "stopping: finishing requests in flight")
    await runner.cleanup()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m integrations.local.sample_app")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--version", required=True)
    parser.add_argument("--instance", default=os.environ.get("SWITCHYARD_INSTANCE"))
    parser.add_argument("--config", default="{}", help="faults as JSON")
    args = parser.parse_args(argv)
    try:
        config = json.loads(args.config)
    except json.JSONDecodeError as exc:
        parser.error(f"--config is not valid JSON: {exc}")
    faults, errors = parse_faults(config)
    if errors:
        parser.error("; ".join(f"{key}: {message}" for key, message in errors))
    instance = args.instance or f"sample-{args.port}"
    use_fleet_loop()
    return asyncio.run(serve(args.host, args.port, args.version, instance, faults))


if __name__ == "__main__":
    sys.exit(main())
