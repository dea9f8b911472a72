"""Mirroring on the local router (Argo Rollouts' ``setMirrorRoute``; a dark launch): a copy of
``percentage``% of the requests matching a mirror route is sent to an instance of the canary
slot, and its answer is read and dropped. The user's request is answered by the slot the
routing chose, never from the copy, and never waits for it.

A route (``integrations.base.Routing.mirror_routes``) is ``{"name", "percentage": 0..100,
"match": [{"method": M, "path": M, "headers": {NAME: M}}]}`` with each ``M`` one of
``{"exact" | "prefix" | "regex": text}``; a request matches a route when it matches any of its
matches (all of a match's parts), or always when ``match`` is empty. Which requests are copied
is drawn at random per request. Only requests whose body is in hand (up to the router's buffer
limit) are copied. The copies are counted in the canary instance's request statistics, so an
analysis of the new release measures the mirrored traffic too, and each copy's answer is
compared with the user's (``integrations.local.darklaunch``: status, body digest, latency).
"""

from __future__ import annotations

import asyncio
import random
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
from yarl import URL

from integrations.local.stats import code_class

TIMEOUT = aiohttp.ClientTimeout(total=10)
MAX_IN_FLIGHT = 64  # copies a router has on their way at once; more are dropped (and counted)
Test = Callable[[str | None], bool]


@dataclass(frozen=True)
class Mirror:
    percentage: int
    matches: tuple[tuple[tuple[str, Test], ...], ...]  # any match; each: all (part, test)

    def wants(self, method: str, path: str, headers: Mapping[str, str]) -> bool:
        if self.matches and not any(_holds(m, method, path, headers) for m in self.matches):
            return False
        return random.random() * 100 < self.percentage


def compile_routes(routes: Any) -> tuple[Mirror, ...]:
    out = []
    for route in routes or ():
        matches = []
        for match in route.get("match") or ():
            parts: list[tuple[str, Test]] = []
            for part in ("method", "path"):
                if match.get(part):
                    parts.append((part, value_test(match[part])))
            for name, value in (match.get("headers") or {}).items():
                parts.append((f"header:{name}", value_test(value)))
            matches.append(tuple(parts))
        out.append(Mirror(int(route.get("percentage", 100)), tuple(matches)))
    return tuple(out)


def value_test(match: Mapping[str, str]) -> Test:
    """The test of a value against ``{"exact" | "prefix" | "regex": text}`` (a regex must match
    the whole value)."""
    ((kind, text),) = match.items()
    if kind == "exact":
        return lambda value: value == text
    if kind == "prefix":
        return lambda value: value is not None and value.startswith(text)
    pattern = re.compile(text)
    return lambda value: value is not None and pattern.fullmatch(value) is not None


def _holds(parts, method: str, path: str, headers: Mapping[str, str]) -> bool:
    for part, test in parts:
        if part == "method":
            value = method
        elif part == "path":
            value = path
        else:
            value = headers.get(part[len("header:") :])
        if not test(value):
            return False
    return True


class Copier:
    """Sends the copies, each in its own task, and keeps them until they finish. At most
    ``limit`` at once: a canary slower than the traffic would otherwise pile up a task, a request
    body and a connection per copy for up to ``TIMEOUT``; the copies over it are not sent
    (``dropped`` counts them). A copy is best effort: the user's request never waits for it."""

    def __init__(self, limit: int = MAX_IN_FLIGHT) -> None:
        self._tasks: set[asyncio.Task] = set()
        self.limit = limit
        self.dropped = 0

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    def send(
        self,
        session: aiohttp.ClientSession,
        inst: Any,
        request: Any,
        headers: Any,
        body: bytes | None,
        observe: Callable[[Any, str, float], None],
        pair: Any = None,
    ) -> None:
        """``pair`` (``darklaunch.Pair``): the copy's answer is compared with the user's."""
        if len(self._tasks) >= self.limit:
            self.dropped += 1
            return
        task = asyncio.get_running_loop().create_task(
            self._copy(
                session, inst, request.method, request.raw_path, headers, body, observe, pair
            )
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _copy(self, session, inst, method, raw_path, headers, body, observe, pair) -> None:
        clock = time.perf_counter
        started = clock()
        url = URL(inst.base_url + raw_path, encoded=True)
        side = pair.mirror if pair is not None else None
        try:
            async with session.request(
                method, url, headers=headers, data=body, allow_redirects=False, timeout=TIMEOUT
            ) as answer:
                data = await answer.read()  # the user was answered by the routed slot
                seconds = clock() - started
                observe(inst.series, code_class(answer.status), seconds)
                if side is not None:
                    side.feed(data)
                    side.done(answer.status, seconds)
        except (aiohttp.ClientError, TimeoutError) as exc:
            observe(inst.series, "error", clock() - started)
            if side is not None:
                side.failed(exc, clock() - started)
        finally:
            if pair is not None:
                if side.status is None and side.error is None:
                    side.failed("cancelled", clock() - started)
                pair.finish()

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
