"""``manage.py demo``: everything on one machine, seeded, with a trickle of traffic.

Starts the embedded Redis (unless REDIS_URL is set), migrates, seeds two services in
dev/staging/prod, starts web + worker + beat + fleet agent, sends a steady trickle of requests
through every router so the numbers move, and stops everything on Ctrl-C.
"""

from __future__ import annotations

import signal
import threading
import time
from urllib.parse import urlsplit

import httpx
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from releases import demo
from switchyard import processes
from switchyard.embedded_redis import EmbeddedRedis


class Command(BaseCommand):
    help = "Run a complete demo installation on this machine (Ctrl-C stops it all)."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--rate", type=float, default=5.0, help="requests/s per router")

    def handle(self, *args, port, rate, **options):
        redis = None
        if settings.REDIS_EMBEDDED:
            redis = EmbeddedRedis(settings.EMBEDDED_REDIS_SOCKET).start()
            self.stdout.write(f"embedded redis on {redis.url}")
        call_command("migrate", verbosity=0)
        stop = threading.Event()
        supervisor = processes.Supervisor(log_dir=settings.VAR_DIR / "logs")
        # Ctrl-C and SIGTERM both stop everything (set explicitly: a shell that starts the demo in
        # the background makes it ignore SIGINT otherwise)
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop.set())
        try:
            fleet_port = urlsplit(settings.FLEET_URL).port or 8765
            # every child is restarted if it dies (with backoff, logged): processes.Supervisor
            fleet = processes.fleet_command(fleet_port, settings.FLEET_TOKEN)
            supervisor.start("fleet", fleet, restart=True)
            # forward ticks on the default queue; rollback and abort ticks have their own worker
            # so they never wait behind slow ticks
            worker = processes.worker_command(concurrency=2, queues="default", name="worker")
            supervisor.start("worker", worker, restart=True)
            priority = processes.worker_command(concurrency=1, queues="priority", name="priority")
            supervisor.start("worker-priority", priority, restart=True)
            # notifications deliver on their own queue, so a slow receiver never holds a tick
            notify = processes.worker_command(concurrency=1, queues="notify", name="notify")
            supervisor.start("notify", notify, restart=True)
            beat = processes.beat_command(settings.VAR_DIR / "celerybeat-schedule")
            supervisor.start("beat", beat, restart=True)
            supervisor.start(
                "web", processes.web_command(port), restart=True, env=processes.WEB_ENV
            )
            processes.wait_http(f"{settings.FLEET_URL}/healthz")
            targets = demo.seed()
            processes.wait_http(f"http://127.0.0.1:{port}/login/")
            self.stdout.write(
                self.style.SUCCESS(
                    f"\nSwitchyard is running: http://127.0.0.1:{port}/\n"
                    f"  log in as {demo.DEMO_USER} / {demo.DEMO_PASSWORD}\n"
                    f"  API docs: http://127.0.0.1:{port}/api/v1/docs\n"
                    f"  logs: {settings.VAR_DIR / 'logs'}\n"
                    "  Ctrl-C stops everything.\n"
                )
            )
            ports = [t.config["router_port"] for t in targets]
            threading.Thread(target=trickle, args=(ports, rate, stop), daemon=True).start()
            while not stop.is_set():
                for name in supervisor.restart_dead():
                    self.stderr.write(f"{name} had exited and was restarted: see its log")
                stop.wait(1.0)
        except KeyboardInterrupt:
            pass
        finally:
            stop.set()
            self.stdout.write("stopping…")
            supervisor.stop()
            if redis is not None:
                redis.stop()


def trickle(ports: list[int], rate: float, stop: threading.Event) -> None:
    """A steady trickle of user traffic through every router (errors ignored)."""
    interval = 1.0 / max(rate, 0.1)
    with httpx.Client(timeout=2.0) as client:
        while not stop.is_set():
            started = time.monotonic()
            for port in ports:
                try:
                    client.get(f"http://127.0.0.1:{port}/")
                except httpx.HTTPError:
                    pass
            stop.wait(max(0.0, interval - (time.monotonic() - started)))
