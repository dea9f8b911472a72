"""One application instance: its process, its health checks, its drain and stop.

States: ``starting`` (spawned, not yet passed ``healthy_threshold`` checks in a row), ``ready``
(routable), ``unhealthy`` (``unhealthy_threshold`` failed checks in a row; not routed until it
passes again), ``crashed`` (exited unexpectedly; restarted with exponential backoff),
``draining`` (being removed: no new requests, in-flight ones finish), ``stopped``.

While ``starting``, a refused connection (nothing listening yet) is not a failure: only an answer
that is not 2xx, or a timeout, counts. So a slow starter stays ``starting`` and a broken health
endpoint turns ``unhealthy``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable

import aiohttp

from integrations.local import children
from integrations.local import zygote as zygotes
from integrations.local.artifacts import HealthSettings, LaunchSpec
from integrations.local.ports import free_port

log = logging.getLogger("switchyard.fleet")

BACKOFF_FIRST = 0.5
BACKOFF_MAX = 15.0
BACKOFF_RESET_AFTER = 30.0  # ready this long: the next crash starts the backoff over
STOP_GRACE = 5.0  # SIGTERM, then SIGKILL after this long

OK, REFUSED, FAILED = "ok", "refused", "failed"


class Instance:
    def __init__(
        self,
        *,
        target_key: str,
        slot: str,
        instance_id: str,
        version: str,
        spec: LaunchSpec,
        health: HealthSettings,
        checker: aiohttp.ClientSession,
        log_dir: str | None = None,
        host: str = "127.0.0.1",
        on_stopped: Callable[[Instance], None] | None = None,
        zygote: zygotes.Zygote | None = None,
    ) -> None:
        self.target_key = target_key
        self.slot = slot
        self.id = instance_id
        self.version = version
        self.spec = spec
        self.health = health  # the slot may swap it for new settings at any time
        self.host = host
        self.state = "starting"
        self.inflight = 0
        self.restarts = 0
        self.port: int | None = None
        self.pid: int | None = None
        self.series = None  # the router's counters for this instance (set by the target)
        self._checker = checker
        self._log_dir = log_dir
        self._on_stopped = on_stopped
        self._zygote = zygote
        self._ready_since: float | None = None
        self._proc: children.Child | zygotes.Forked | None = None
        self._draining = False
        self._stop = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None

    # -- what the router and the status see ---------------------------------------------------

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}" if self.port else ""

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def ready_for(self) -> float:
        if self.state != "ready" or self._ready_since is None:
            return 0.0
        return time.monotonic() - self._ready_since

    @property
    def draining(self) -> bool:
        return self._draining

    def acquire(self) -> None:
        self.inflight += 1
        self._idle.clear()

    def release(self) -> None:
        self.inflight -= 1
        if self.inflight <= 0:
            self.inflight = 0
            self._idle.set()

    def as_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "slot": self.slot,
            "version": self.version,
            "state": self.state,
            "ready_for": round(self.ready_for, 3),
            "address": self.address,
            "restarts": self.restarts,
            "inflight": self.inflight,
            "pid": self.pid,
        }

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.create_task(self._supervise(), name=f"instance {self.id}")

    def begin_drain(self) -> None:
        """From now on the router sends this instance no new request."""
        if not self._draining:
            self._draining = True
            if self.state != "stopped":
                self._set_state("draining")

    async def stop(self, drain_timeout: float = 30.0) -> None:
        """Drain (no new requests; wait for in-flight ones, bounded), then SIGTERM, then SIGKILL."""
        self.begin_drain()
        if not self._stop.is_set():
            if self.inflight:
                try:
                    await asyncio.wait_for(self._idle.wait(), drain_timeout)
                except TimeoutError:
                    self._event(f"drain timed out with {self.inflight} request(s) in flight")
            self._stop.set()
        if self._task is not None:
            await asyncio.shield(self._task)

    def kill_now(self) -> None:
        """Last resort when the agent itself is going away."""
        self._draining = True
        self._stop.set()

    def _set_state(self, state: str) -> None:
        if state == "ready" and self.state != "ready":
            self._ready_since = time.monotonic()
        elif state != "ready":
            self._ready_since = None
        self.state = state

    def _event(self, message: str) -> None:
        log.info("%s %s/%s (%s): %s", self.target_key, self.slot, self.id, self.version, message)

    async def _supervise(self) -> None:
        backoff = BACKOFF_FIRST
        try:
            while not self._draining:
                started = await self._run_once()
                if self._draining:
                    break
                self._set_state("crashed")
                if started is not None and time.monotonic() - started > BACKOFF_RESET_AFTER:
                    backoff = BACKOFF_FIRST
                self._event(f"restarting in {backoff:g}s")
                try:
                    await asyncio.wait_for(self._stop.wait(), backoff)
                except TimeoutError:
                    pass
                backoff = min(backoff * 2, BACKOFF_MAX)
                if not self._draining:
                    self.restarts += 1
        finally:
            proc = self._proc
            if proc is not None and proc.returncode is None:
                await children.terminate(proc, STOP_GRACE)
            self._set_state("stopped")
            self.inflight = 0
            self._idle.set()
            self._event("stopped")
            if self._on_stopped is not None:
                self._on_stopped(self)

    async def _run_once(self) -> float | None:
        """Run the process until it exits or we are told to stop; when it started, if it did."""
        self.port = free_port(self.host)
        self._set_state("starting")
        argv = self.spec.command(self.port)
        env = self.spec.environment(
            self.port,
            {
                "SWITCHYARD_INSTANCE": self.id,
                "SWITCHYARD_SLOT": self.slot,
                "SWITCHYARD_VERSION": self.version,
                "SWITCHYARD_TARGET": self.target_key,
            },
        )
        log_path = None
        if self._log_dir:
            log_path = os.path.join(self._log_dir, f"{self.target_key}.{self.id}.log")
        try:
            self._proc = await self._launch(argv, env, log_path)
        except OSError as exc:
            self._event(f"could not start {argv[0]!r}: {exc}")
            return None
        started = time.monotonic()
        self.pid = self._proc.pid
        self._event(f"started pid {self.pid} on {self.address}")
        checks = asyncio.create_task(self._check_health())
        exited = asyncio.create_task(self._proc.wait())
        told = asyncio.create_task(self._stop.wait())
        try:
            await asyncio.wait({exited, told}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (checks, told):
                task.cancel()
        if exited.done():
            if not self._draining:
                self._event(f"crashed: exited with status {self._proc.returncode}")
        else:
            exited.cancel()
            status = await children.terminate(self._proc, STOP_GRACE)
            self._event(f"exited with status {status}")
        return started

    async def _launch(
        self, argv: list[str], env: dict[str, str], log_path: str | None
    ) -> children.Child | zygotes.Forked:
        """Fork the sample app from the fleet's zygote when it can; exec anything else."""
        if self._zygote is not None and self.spec.is_sample and zygotes.forkable(argv):
            try:
                return await self._zygote.fork(argv, env=env, cwd=self.spec.cwd, log=log_path)
            except zygotes.ZygoteGone as exc:
                self._event(f"{exc}: exec'd instead")
        log_fd = None
        if log_path:
            log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            return await children.spawn(argv, env=env, cwd=self.spec.cwd, log_fd=log_fd)
        finally:
            if log_fd is not None:
                os.close(log_fd)

    async def _check_health(self) -> None:
        passed = failed = 0
        while True:
            health = self.health
            await asyncio.sleep(health.interval)
            result = await self._probe(health)
            if self._draining:
                return
            if result == OK:
                passed, failed = passed + 1, 0
                if self.state != "ready" and passed >= health.healthy_threshold:
                    self._set_state("ready")
                    self._event(f"ready on {self.address}")
            elif result == REFUSED and self.state == "starting":
                passed = 0
            else:
                passed, failed = 0, failed + 1
                if self.state != "unhealthy" and failed >= health.unhealthy_threshold:
                    self._set_state("unhealthy")
                    self._event(f"unhealthy after {failed} failed checks of {health.path}")

    async def _probe(self, health: HealthSettings) -> str:
        url = f"{self.base_url}{health.path}"
        try:
            timeout = aiohttp.ClientTimeout(total=health.timeout)
            async with self._checker.get(url, timeout=timeout) as resp:
                await resp.read()
                return OK if 200 <= resp.status < 300 else FAILED
        except aiohttp.ClientConnectorError:
            return REFUSED
        except Exception:  # any other way a probe can go wrong is a failed check
            return FAILED
