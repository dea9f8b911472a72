"""The local fleet agent: one long-running process that owns application instances and routers.

    python -m integrations.local.agent --host 127.0.0.1 --port 8765 --token TOKEN [--state-dir D]

It serves the control API on ``--host:--port`` and, per target, two routers on ports of their own:
the main one (weights, header/cookie overrides, sticky users) and the preview one (the preview
slot only). On SIGTERM/SIGINT it stops accepting, lets requests in flight finish, and stops every
instance; instances also die with it if it is killed outright (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
import threading

from aiohttp import web

from integrations.local.control import make_app
from integrations.local.fleet import Fleet
from integrations.local.loops import use_fleet_loop

log = logging.getLogger("switchyard.fleet")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m integrations.local.agent", description="Switchyard local fleet agent"
    )
    parser.add_argument("--host", default="127.0.0.1", help="address of the API and routers")
    parser.add_argument("--port", type=int, default=8765, help="control API port")
    parser.add_argument(
        "--token",
        default=os.environ.get("SWITCHYARD_FLEET_TOKEN"),
        help="bearer token the control API requires (default: $SWITCHYARD_FLEET_TOKEN)",
    )
    parser.add_argument("--state-dir", help="keep desired state and instance logs here")
    parser.add_argument(
        "--upstream-timeout",
        type=float,
        default=60.0,
        help="seconds a router waits for an instance's answer",
    )
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    if not args.token:
        parser.error("a token is required: --token or $SWITCHYARD_FLEET_TOKEN")
    return args


async def serve(args: argparse.Namespace, stop: asyncio.Event | None = None) -> int:
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)

    fleet = Fleet(host=args.host, state_dir=args.state_dir, read_timeout=args.upstream_timeout)
    await fleet.open()
    runner = web.AppRunner(
        make_app(fleet, args.token), handle_signals=False, access_log=None, shutdown_timeout=5
    )
    await runner.setup()
    try:
        await web.TCPSite(runner, args.host, args.port, reuse_address=True).start()
    except OSError as exc:
        log.error("cannot listen on %s:%s: %s", args.host, args.port, exc)
        await runner.cleanup()
        await fleet.close()
        return 1
    await fleet.restore()
    log.info("fleet agent listening on http://%s:%s (pid %s)", args.host, args.port, os.getpid())
    try:
        await stop.wait()
    finally:
        log.info("fleet agent stopping: draining routers and stopping instances")
        await runner.cleanup()
        await fleet.close()
        log.info("fleet agent stopped")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=getattr(logging, args.log_level.upper(), logging.INFO),
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    use_fleet_loop()
    return asyncio.run(serve(args))


if __name__ == "__main__":
    sys.exit(main())
