"""A client that sends steady traffic through a router and records who answered.

Used by the end-to-end tests, the benchmarks and the demo. Open loop: requests are started on a
fixed schedule whatever the answers, by a few worker threads, each with its own keep-alive client.
Only ever point it at loopback addresses.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import httpx


@dataclass(frozen=True)
class Sample:
    started: float  # time.monotonic() when sent
    finished: float
    status: int  # 0 for a connection error or timeout
    version: str  # X-Switchyard-Version of the instance that answered ('' on error)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


class Traffic:
    def __init__(self, url: str, *, rate: float = 100.0, threads: int = 4, timeout: float = 5.0):
        if not url.startswith(("http://127.", "http://localhost", "http://[::1]")):
            raise ValueError(f"traffic is only ever sent to loopback addresses, not {url}")
        self.url = url
        self.rate = rate
        self.threads = threads
        self.timeout = timeout
        self.samples: list[Sample] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._workers: list[threading.Thread] = []

    def start(self) -> Traffic:
        interval = self.threads / self.rate
        for index in range(self.threads):
            offset = index * interval / self.threads
            worker = threading.Thread(target=self._run, args=(interval, offset), daemon=True)
            worker.start()
            self._workers.append(worker)
        return self

    def stop(self) -> list[Sample]:
        self._stop.set()
        for worker in self._workers:
            worker.join(self.timeout + 2)
        return self.snapshot()

    def snapshot(self) -> list[Sample]:
        with self._lock:
            return list(self.samples)

    def __enter__(self) -> Traffic:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _run(self, interval: float, offset: float) -> None:
        next_at = time.monotonic() + offset
        with httpx.Client(timeout=self.timeout) as client:
            while not self._stop.is_set():
                delay = next_at - time.monotonic()
                if delay > 0:
                    self._stop.wait(delay)
                    if self._stop.is_set():
                        return
                next_at += interval
                started = time.monotonic()
                try:
                    response = client.get(self.url)
                    sample = Sample(
                        started,
                        time.monotonic(),
                        response.status_code,
                        response.headers.get("x-switchyard-version", ""),
                    )
                except httpx.HTTPError:
                    sample = Sample(started, time.monotonic(), 0, "")
                with self._lock:
                    self.samples.append(sample)


def failures(samples: list[Sample]) -> list[Sample]:
    return [s for s in samples if not s.ok]


def settled_after(samples: list[Sample], since: float, version: str) -> float | None:
    """Seconds from ``since`` until the first moment after which every request sent was answered
    by ``version``; None if requests sent at the end were still answered by another version."""
    later = sorted((s for s in samples if s.started >= since), key=lambda s: s.started)
    if not later or later[-1].version != version:
        return None
    last_other = max((s.started for s in later if s.version != version), default=since)
    return max(0.0, last_other - since)
