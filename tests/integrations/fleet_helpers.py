"""Helpers for tests that drive a real fleet agent process: a control client, waiting, load."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import httpx

from integrations.local.process import AgentProcess

# fast health checks, so instances are ready about half a second after they start
FAST_HEALTH = {"interval": 0.1, "healthy_threshold": 2, "unhealthy_threshold": 3}


def wait_until(
    check: Callable[[], Any], timeout: float = 10.0, interval: float = 0.05, what: str = ""
) -> Any:
    """Call ``check`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"gave up after {timeout:g}s waiting for {what or check}: last {last!r}")


class Control:
    """The agent's control API, authenticated."""

    def __init__(self, agent: AgentProcess) -> None:
        self.agent = agent
        self.http = httpx.Client(
            base_url=agent.url, headers={"Authorization": f"Bearer {agent.token}"}, timeout=10
        )

    def close(self) -> None:
        self.http.close()

    def create_target(
        self, key: str, router_port: int | None = None, preview_port: int | None = None
    ) -> str:
        body = {"router_port": router_port, "preview_port": preview_port}
        response = self.http.put(f"/targets/{key}", json=body)
        assert response.status_code in (200, 201), response.text
        return response.json()["endpoint"]

    def ensure(
        self,
        key: str,
        slot: str,
        version: str,
        replicas: int,
        sample: dict[str, Any] | None = None,
        *,
        artifact: dict[str, Any] | None = None,
        health: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        body = {
            "version": version,
            "artifact": artifact if artifact is not None else {"sample": sample or {}},
            "health": FAST_HEALTH if health is None else health,
            "replicas": replicas,
        }
        response = self.http.put(f"/targets/{key}/slots/{slot}", json=body)
        assert response.status_code == 202, response.text
        return response.json()

    def set_weights(self, key: str, weights: dict[str, int] | None) -> None:
        response = self.http.put(f"/targets/{key}/weights", json={"weights": weights})
        assert response.status_code == 200, response.text

    def set_routing(self, key: str, weights: dict[str, int] | None, **rest: Any) -> dict:
        """The whole routing: ``weights`` and any of preview_slot, stable_slot, canary_slot,
        header, cookie, sticky_key (the others null)."""
        response = self.http.put(f"/targets/{key}/routing", json={"weights": weights, **rest})
        assert response.status_code == 200, response.text
        return response.json()

    def status(self, key: str) -> dict[str, Any]:
        response = self.http.get(f"/targets/{key}")
        assert response.status_code == 200, response.text
        return response.json()

    def instances(self, key: str, slot: str) -> list[dict[str, Any]]:
        return self.status(key)["slots"].get(slot, {}).get("instances", [])

    def wait_ready(self, key: str, slot: str, count: int, timeout: float = 10.0) -> list[dict]:
        def ready() -> list[dict] | None:
            instances = self.instances(key, slot)
            live = [i for i in instances if i["state"] not in ("draining", "stopped")]
            if len(live) == count and all(i["state"] == "ready" for i in live):
                return live
            return None

        return wait_until(ready, timeout, what=f"{count} ready instance(s) in {key}/{slot}")

    def metrics_json(self) -> dict[str, Any]:
        return self.http.get("/metrics.json").json()


@dataclass
class Answer:
    status: int
    slot: str | None
    version: str | None
    instance: str | None
    started: float = 0.0  # time.monotonic() just before the request was sent
    finished: float = 0.0  # ... and once its whole answer was in


async def _fire(url: str, count: int, concurrency: int) -> list[Answer]:
    answers: list[Answer] = []
    remaining = count

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            started = time.monotonic()
            async with session.get(url) as response:
                await response.read()
                answers.append(_answer(response, started))

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
    return answers


async def _fire_each(url: str, headers: list[dict[str, str]], concurrency: int) -> list[Answer]:
    answers: list[Answer | None] = [None] * len(headers)
    indexes = iter(range(len(headers)))

    async def worker(session: aiohttp.ClientSession) -> None:
        for index in indexes:
            started = time.monotonic()
            async with session.get(url, headers=headers[index]) as response:
                await response.read()
                answers[index] = _answer(response, started)

    # no cookie jar: a Cookie header is sent as given, never remembered between requests
    async with aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=30), cookie_jar=aiohttp.DummyCookieJar()
    ) as session:
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
    return answers  # type: ignore[return-value]


def _answer(response: aiohttp.ClientResponse, started: float) -> Answer:
    headers = response.headers
    return Answer(
        response.status,
        headers.get("X-Switchyard-Slot"),
        headers.get("X-Switchyard-Version"),
        headers.get("X-Switchyard-Instance"),
        started,
        time.monotonic(),
    )


def fire(url: str, count: int, concurrency: int = 16) -> list[Answer]:
    """``count`` GET requests to ``url`` from ``concurrency`` concurrent clients."""
    return asyncio.run(_fire(url, count, concurrency))


def fire_each(url: str, headers: list[dict[str, str]], concurrency: int = 16) -> list[Answer]:
    """One GET request to ``url`` per item of ``headers`` (sent with those headers), from
    ``concurrency`` concurrent clients; the answers in the same order."""
    return asyncio.run(_fire_each(url, headers, concurrency))


def share(answers: list[Answer], field: str) -> Counter[str]:
    return Counter(getattr(answer, field) for answer in answers)


class BackgroundLoad:
    """Clients sending requests in a thread until stopped; every answer (or failure) is kept."""

    def __init__(self, url: str, concurrency: int = 8) -> None:
        self.url = url
        self.concurrency = concurrency
        self.answers: list[Answer] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    async def _run(self) -> None:
        async def worker(session: aiohttp.ClientSession) -> None:
            while not self._stop.is_set():
                started = time.monotonic()
                try:
                    async with session.get(self.url) as response:
                        await response.read()
                        self.answers.append(_answer(response, started))
                except (aiohttp.ClientError, TimeoutError) as exc:
                    self.failures.append(f"{type(exc).__name__}: {exc}")

        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
            await asyncio.gather(*(worker(session) for _ in range(self.concurrency)))

    def __enter__(self) -> BackgroundLoad:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(35)
