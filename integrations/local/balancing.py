"""Which instance serves the next request: a slot by weight, then the least busy instance in it.

A request may ask for a slot (``prefer``: a header/cookie override or a sticky placement, see
``targeting``); it gets that slot when the slot has a ready instance, and otherwise is served as
if it had asked for nothing.

Weighted random per request over the slots with weight > 0. If the chosen slot has no ready
instance, another weighted slot that has one serves, then any ready instance at all: a request
that some ready instance could serve is never refused. ``weights=None`` spreads requests evenly
over every ready instance of every slot. Within a pool, the instance with the fewest requests in
flight wins, ties broken round-robin.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Protocol


class Routable(Protocol):
    slot: str
    inflight: int


class Pool(Protocol):
    def ready_instances(self) -> list: ...


class Balancer:
    def __init__(self, rng: random.Random | None = None) -> None:
        self._random = (rng or random.Random()).random
        self._turn = 0

    def least_busy(self, instances: Sequence[Routable]) -> Routable:
        n = len(instances)
        if n == 1:
            return instances[0]
        self._turn = (self._turn + 1) % 1_000_000_007
        start = self._turn % n
        best = instances[start]
        for k in range(1, n):
            candidate = instances[(start + k) % n]
            if candidate.inflight < best.inflight:
                best = candidate
        return best

    def choose(
        self,
        slots: Mapping[str, Pool],
        weights: Mapping[str, int] | None,
        exclude: object = None,
        prefer: str | None = None,
    ) -> Routable | None:
        """The instance for the next request (not ``exclude``), or None if nothing is ready."""
        if prefer is not None:
            chosen = self.choose_in(slots.get(prefer), exclude)
            if chosen is not None:
                return chosen
        ready = {}
        for name, slot in slots.items():
            instances = [inst for inst in slot.ready_instances() if inst is not exclude]
            if instances:
                ready[name] = instances
        if not ready:
            return None
        if weights is None:
            return self.least_busy([inst for insts in ready.values() for inst in insts])
        weighted = [(name, w) for name, w in weights.items() if w > 0 and name in slots]
        name = self._by_weight(weighted)
        if name not in ready:  # fall back: another weighted slot that can serve, then anyone
            serving = [(n, w) for n, w in weighted if n in ready]
            name = self._by_weight(serving) if serving else next(iter(ready))
        return self.least_busy(ready[name])

    def choose_in(self, pool: Pool | None, exclude: object = None) -> Routable | None:
        """The least busy ready instance of one slot (not ``exclude``), or None."""
        if pool is None:
            return None
        instances = [inst for inst in pool.ready_instances() if inst is not exclude]
        return self.least_busy(instances) if instances else None

    def _by_weight(self, weighted: list[tuple[str, int]]) -> str | None:
        if not weighted:
            return None
        if len(weighted) == 1:
            return weighted[0][0]
        point = self._random() * sum(w for _, w in weighted)
        for name, w in weighted:
            point -= w
            if point < 0:
                return name
        return weighted[-1][0]
