"""The agent's targets: each with its slots, its routing, its counters and its two routers.

The main router serves user traffic by the routing; the preview router serves only the routing's
preview slot. A target's routing is replaced whole (``set_routing``), never edited in place, so
each request sees one routing from start to end.

With a state directory, the desired state (targets, router ports, slots, routing) is written to
``state.json`` after every change and brought back when the agent starts again; instance output
goes to ``logs/<target>.<instance>.log`` there.
"""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import os
from collections.abc import Iterator
from dataclasses import asdict
from typing import Any

import aiohttp

from integrations.base import Routing
from integrations.local import validation
from integrations.local import zygote as zygotes
from integrations.local.instances import Instance
from integrations.local.router import Router, upstream_session
from integrations.local.slots import Slot
from integrations.local.stats import TargetStats, prometheus_text, stats_json
from integrations.local.targeting import Rules

log = logging.getLogger("switchyard.fleet")


class Conflict(Exception):
    """The request cannot be done as asked (a port is taken, a target is elsewhere)."""


class FleetTarget:
    def __init__(
        self,
        key: str,
        fleet: Fleet,
        pinned_port: int | None,
        pinned_preview_port: int | None = None,
    ) -> None:
        self.key = key
        self.pinned_port = pinned_port
        self.pinned_preview_port = pinned_preview_port
        self.slots: dict[str, Slot] = {}
        self.rules = Rules(Routing())  # what the routers read, once per request
        self.stats = TargetStats(key)
        self.router = Router(self, fleet.upstream)
        self.preview = Router(self, fleet.upstream, preview=True)
        self._fleet = fleet
        self._seq = 0
        # the highest fence applied, (deployment id, claim generation) (control.py); only grows
        self.fence: tuple[int, int] = (0, 0)

    @property
    def routing(self) -> Routing:
        return self.rules.routing

    @property
    def weights(self) -> dict[str, int] | None:
        return self.rules.routing.weights

    def set_routing(self, routing: Routing) -> None:
        """Route every request from now on by ``routing`` (one assignment: none sees a mix)."""
        self.rules = Rules(routing)

    @property
    def endpoint(self) -> str:
        return f"http://{self._fleet.public_host}:{self.router.port}"

    @property
    def preview_endpoint(self) -> str:
        return f"http://{self._fleet.public_host}:{self.preview.port}"

    @property
    def ports(self) -> tuple[int | None, int | None]:
        return self.router.port, self.preview.port

    def slot(self, name: str) -> Slot:
        if name not in self.slots:
            self.slots[name] = Slot(name, self._new_instance, self._instance_gone)
        return self.slots[name]

    def instances(self) -> Iterator[Instance]:
        for slot in self.slots.values():
            yield from slot.all_instances()

    def _new_instance(self, slot: Slot) -> Instance:
        self._seq += 1
        assert slot.version is not None and slot.spec is not None
        inst = Instance(
            target_key=self.key,
            slot=slot.name,
            instance_id=f"{slot.name}-{self._seq}",
            version=slot.version,
            spec=slot.spec,
            health=slot.health,
            checker=self._fleet.checker,
            log_dir=self._fleet.log_dir,
            host=self._fleet.instance_host,
            on_stopped=slot.instance_stopped,
            zygote=self._fleet.zygote,
        )
        inst.series = self.stats.for_instance(slot.name, inst.id, slot.version)
        return inst

    def _instance_gone(self, slot: Slot, inst: Instance) -> None:
        self.stats.retire(inst.id)
        if slot.deleted and slot.empty and self.slots.get(slot.name) is slot:
            del self.slots[slot.name]

    def status_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "endpoint": self.endpoint,
            "router_port": self.router.port,
            "preview_endpoint": self.preview_endpoint,
            "preview_port": self.preview.port,
            "weights": self.weights,
            "routing": asdict(self.routing),
            "fence": list(self.fence),
            "slots": {name: slot.as_json() for name, slot in self.slots.items()},
        }

    def metrics_text(self) -> str:
        return prometheus_text([self.stats], self.instances())

    def metrics_json(self) -> dict[str, Any]:
        # with the weights in force as the counters are read, so a reader knows which split a
        # window of requests was sent under (the dashboard's per-side rates, releases/live/charts)
        return {**stats_json(self.stats, self.instances()), "weights": self.weights}

    def desired_state(self) -> dict[str, Any]:
        return {
            "router_port": self.router.port,
            "pinned": self.pinned_port is not None,
            "preview_port": self.preview.port,
            "preview_pinned": self.pinned_preview_port is not None,
            "routing": asdict(self.routing),
            "fence": list(self.fence),
            "slots": {
                name: slot.desired_state()
                for name, slot in self.slots.items()
                if not slot.deleted and slot.version is not None
            },
        }

    async def shutdown(self, drain_timeout: float) -> None:
        """Stop the routers (requests in flight finish), then every instance."""
        await asyncio.gather(self.router.close(), self.preview.close())
        stops = []
        for inst in list(self.instances()):
            if drain_timeout <= 0:
                inst.kill_now()
            stops.append(inst.stop(drain_timeout))
        await asyncio.gather(*stops, return_exceptions=True)


class Fleet:
    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        state_dir: str | None = None,
        read_timeout: float = 60.0,
    ) -> None:
        self.router_host = host
        self.public_host = "127.0.0.1" if host in ("0.0.0.0", "") else host
        self.instance_host = "127.0.0.1"
        self.state_dir = state_dir
        self.log_dir = os.path.join(state_dir, "logs") if state_dir else None
        self.targets: dict[str, FleetTarget] = {}
        self._read_timeout = read_timeout
        self._lock = asyncio.Lock()
        self._background: set[asyncio.Task[None]] = set()
        self._deleted: set[FleetTarget] = set()  # still draining
        self._restoring = False
        # the sample app's instances are forked from it (integrations.local.zygote)
        self.zygote = zygotes.Zygote(self.log_dir) if zygotes.enabled() else None
        self.checker: aiohttp.ClientSession
        self.upstream: aiohttp.ClientSession

    async def open(self) -> None:
        self.checker = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0), cookie_jar=aiohttp.DummyCookieJar()
        )
        self.upstream = upstream_session(self._read_timeout)
        if self.log_dir:
            os.makedirs(self.log_dir, exist_ok=True)

    async def close(self) -> None:
        """Stop every router and instance (the agent is going away)."""
        await asyncio.gather(
            *(t.shutdown(drain_timeout=5.0) for t in self.targets.values()),
            return_exceptions=True,
        )
        for target in self._deleted:  # no time left to drain those
            for inst in list(target.instances()):
                inst.kill_now()
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        if self.zygote is not None:
            await self.zygote.close()
        await self.checker.close()
        await self.upstream.close()

    def all_instances(self) -> Iterator[Instance]:
        for target in self.targets.values():
            yield from target.instances()

    async def create_target(
        self, key: str, port: int | None, preview_port: int | None = None
    ) -> tuple[FleetTarget, bool]:
        """The target ``key`` with its routers (made now if new) and whether it was made now."""
        wanted = (("router_port", port), ("preview_port", preview_port))
        async with self._lock:
            existing = self.targets.get(key)
            if existing is not None:
                for (name, asked), has in zip(wanted, existing.ports, strict=True):
                    if asked is not None and asked != has:
                        raise Conflict(
                            f"target {key} already has its {name} at {has}; "
                            f"delete the target to move it to {asked}"
                        )
                return existing, False
            for name, asked in wanted:
                for other in self.targets.values():
                    if asked is not None and asked in other.ports:
                        raise Conflict(f"{name} {asked} is already used by target {other.key}")
            target = FleetTarget(key, self, port, preview_port)
            await self._listen(target.router, "router_port", port)
            try:
                await self._listen(target.preview, "preview_port", preview_port)
            except Conflict:
                await target.router.close()
                raise
            self.targets[key] = target
            log.info(
                "%s: router on %s, preview on %s", key, target.endpoint, target.preview_endpoint
            )
            self.save()
            return target, True

    async def _listen(self, router: Router, name: str, port: int | None) -> None:
        try:
            await router.start(self.router_host, port or 0)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise Conflict(
                    f"{name} {port} is already in use on {self.router_host}: "
                    f"pick another {name}, or stop what listens there"
                ) from exc
            raise Conflict(f"cannot listen on {self.router_host}:{port}: {exc}") from exc

    async def delete_target(self, key: str) -> None:
        target = self.targets.pop(key)
        await asyncio.gather(target.router.stop_listening(), target.preview.stop_listening())
        self._deleted.add(target)
        task = self._in_background(target.shutdown(drain_timeout=30.0))
        task.add_done_callback(lambda _: self._deleted.discard(target))
        log.info("%s: deleted; draining its instances", key)
        self.save()

    def _in_background(self, coro: Any) -> asyncio.Task[None]:
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    # -- the desired state on disk ------------------------------------------------------------

    @property
    def _state_file(self) -> str | None:
        return os.path.join(self.state_dir, "state.json") if self.state_dir else None

    def save(self) -> None:
        path = self._state_file
        if path is None or self._restoring:
            return
        state = {"targets": {k: t.desired_state() for k, t in self.targets.items()}}
        tmp = f"{path}.tmp"
        with open(tmp, "w") as fh:
            json.dump(state, fh, indent=1, sort_keys=True)
        os.replace(tmp, path)

    async def restore(self) -> None:
        """Bring back the targets, slots and routing saved by an earlier run, as far as possible."""
        path = self._state_file
        if path is None or not os.path.exists(path):
            return
        try:
            with open(path) as fh:
                saved = json.load(fh).get("targets", {})
        except (OSError, ValueError, AttributeError) as exc:
            log.warning("ignoring unreadable state file %s: %s", path, exc)
            return
        self._restoring = True
        try:
            for key, desired in saved.items():
                try:
                    await self._restore_target(key, desired)
                except (Conflict, validation.Invalid, TypeError, AttributeError) as exc:
                    log.warning("%s: not restored: %s", key, getattr(exc, "message", exc))
        finally:
            self._restoring = False
        self.save()

    async def _restore_target(self, key: str, desired: dict[str, Any]) -> None:
        port, preview_port = desired.get("router_port"), desired.get("preview_port")
        pinned = port if desired.get("pinned") else None
        preview_pinned = preview_port if desired.get("preview_pinned") else None
        try:
            target, _ = await self.create_target(key, port, preview_port)
        except Conflict:
            if (pinned, preview_pinned) == (port, preview_port):
                raise
            target, _ = await self.create_target(key, pinned, preview_pinned)  # any will do
        target.pinned_port, target.pinned_preview_port = pinned, preview_pinned
        target.fence = tuple(int(n) for n in desired.get("fence") or (0, 0))[:2]
        for name, slot_state in desired.get("slots", {}).items():
            request = validation.slot_request(slot_state)
            target.slot(name).ensure(
                request.version,
                request.artifact,
                request.spec,
                request.health_raw,
                request.health,
                request.replicas,
            )
        if "routing" in desired:
            target.set_routing(validation.routing(desired["routing"]))
        else:  # a state file from before routing: weights only
            target.set_routing(Routing(validation.weights({"weights": desired.get("weights")})))
        log.info("%s: restored from %s", key, self._state_file)
