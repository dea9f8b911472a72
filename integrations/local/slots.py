"""A slot: N identical instances of one release, kept at N declaratively."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

from integrations.local.artifacts import HealthSettings, LaunchSpec
from integrations.local.instances import Instance

DRAIN_TIMEOUT = 30.0


class Slot:
    def __init__(
        self,
        name: str,
        new_instance: Callable[[Slot], Instance],
        on_instance_gone: Callable[[Slot, Instance], None],
    ) -> None:
        self.name = name
        self.version: str | None = None
        self.artifact: dict[str, Any] = {}
        self.health_raw: dict[str, Any] = {}
        self.spec: LaunchSpec | None = None
        self.health = HealthSettings()
        self.desired = 0
        self.deleted = False
        self.instances: list[Instance] = []  # the live ones, oldest first
        self.leaving: list[Instance] = []  # draining or stopping
        self._new_instance = new_instance
        self._on_instance_gone = on_instance_gone
        self._tasks: set[asyncio.Task[None]] = set()

    def all_instances(self) -> Iterator[Instance]:
        yield from self.instances
        yield from self.leaving

    def ready_instances(self) -> list[Instance]:
        return [inst for inst in self.instances if inst.state == "ready"]

    def ensure(
        self,
        version: str,
        artifact: dict[str, Any],
        spec: LaunchSpec,
        health_raw: dict[str, Any],
        health: HealthSettings,
        replicas: int,
    ) -> None:
        """Run ``replicas`` instances of ``version``; another release replaces every instance."""
        self.deleted = False
        if (version, spec) != (self.version, self.spec):
            for inst in self.instances:
                self._remove(inst)
            self.instances = []
            self.version, self.spec = version, spec
        self.artifact, self.health_raw, self.health = artifact, health_raw, health
        for inst in self.instances:
            inst.health = health
        self.desired = replicas
        self._scale()

    def delete(self) -> None:
        """Drain and stop every instance; the slot goes away with its last instance."""
        self.deleted = True
        self.desired = 0
        self._scale()

    def _scale(self) -> None:
        while len(self.instances) < self.desired:
            inst = self._new_instance(self)
            self.instances.append(inst)
            inst.start()
        excess = len(self.instances) - self.desired
        if excess > 0:
            # the ones not serving first, then the newest
            order = sorted(
                enumerate(self.instances), key=lambda pair: (pair[1].state == "ready", -pair[0])
            )
            removed = [inst for _, inst in order[:excess]]
            for inst in removed:
                self._remove(inst)
            self.instances = [inst for inst in self.instances if inst not in removed]

    def _remove(self, inst: Instance) -> None:
        self.leaving.append(inst)
        inst.begin_drain()  # right now, so the very next request goes elsewhere
        task = asyncio.create_task(inst.stop(DRAIN_TIMEOUT))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def instance_stopped(self, inst: Instance) -> None:
        if inst in self.leaving:
            self.leaving.remove(inst)
        elif inst in self.instances:  # stopped without being removed: the agent is stopping
            self.instances.remove(inst)
        self._on_instance_gone(self, inst)

    @property
    def empty(self) -> bool:
        return not self.instances and not self.leaving

    def as_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "desired": self.desired,
            "ready": len(self.ready_instances()),
            "instances": [inst.as_json() for inst in self.all_instances()],
        }

    def desired_state(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "artifact": self.artifact,
            "health": self.health_raw,
            "replicas": self.desired,
        }
