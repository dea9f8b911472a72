"""Dark launch comparison (as GitHub's Scientist does): for every mirrored request, the router
compares the canary's answer to the copy with the stable answer the user got -- status, a
SHA-256 digest of the body, latency -- and counts what differs. The comparison never touches the
user's answer: the stable side is observed as it streams out (a digest updated per chunk), the
mirror side when the copy's answer has been read, and the pair is judged when both are in,
whichever comes last, in neither's path.

``DarkStats.as_json()`` (in the router's ``/_switchyard/metrics.json`` as ``dark_launch``):
``{"compared", "matched", "status_mismatches", "body_mismatches", "mirror_errors",
"stable_errors", "mismatch_rate", "latency_ms": {"stable_p50", "stable_p99", "mirror_p50",
"mirror_p99", "difference_p50"}, "samples": [{"method", "path", "stable", "mirror"}]}``
(the last few mismatches and errors, newest last).
"""

from __future__ import annotations

import hashlib
from collections import deque
from typing import Any

LATENCIES_KEPT = 2048  # the latency figures are over the last this many compared pairs
SAMPLES_KEPT = 20


class Side:
    """One answer as the comparison sees it: status, body digest, seconds, or the error."""

    __slots__ = ("status", "digest", "seconds", "error", "_hash")

    def __init__(self) -> None:
        self.status: int | None = None
        self.digest: str | None = None
        self.seconds: float | None = None
        self.error: str | None = None
        self._hash = hashlib.sha256()

    def feed(self, chunk: bytes) -> None:
        self._hash.update(chunk)

    def done(self, status: int, seconds: float) -> None:
        self.status, self.seconds, self.digest = status, seconds, self._hash.hexdigest()
        self.error = None  # a retry answered after all

    def failed(self, error: BaseException | str, seconds: float) -> None:
        self.error = error if isinstance(error, str) else type(error).__name__
        self.seconds = seconds
        self._hash = hashlib.sha256()  # a retry starts the body again

    def as_json(self) -> dict[str, Any]:
        return {
            "status": self.status if self.error is None else None,
            "digest": (self.digest or "")[:12] if self.error is None else None,
            "error": self.error,
            "ms": _ms(self.seconds),
        }


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 3)


class Pair:
    """The stable answer and the mirror's for one request; judged by ``stats`` when both have
    finished (``finish`` is called once per side)."""

    __slots__ = ("stats", "method", "path", "stable", "mirror", "_left")

    def __init__(self, stats: DarkStats, method: str, path: str) -> None:
        self.stats, self.method, self.path = stats, method, path
        self.stable, self.mirror = Side(), Side()
        self._left = 2

    def finish(self) -> None:
        self._left -= 1
        if self._left == 0:
            self.stats.record(self)


def _quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class DarkStats:
    """The comparison's counters for one target's router."""

    def __init__(self) -> None:
        self.compared = self.matched = 0
        self.status_mismatches = self.body_mismatches = 0
        self.mirror_errors = self.stable_errors = 0
        self._latencies: deque[tuple[float, float]] = deque(maxlen=LATENCIES_KEPT)
        self._samples: deque[dict[str, Any]] = deque(maxlen=SAMPLES_KEPT)

    def pair(self, method: str, path: str) -> Pair:
        return Pair(self, method, path)

    def record(self, pair: Pair) -> None:
        self.compared += 1
        stable, mirror = pair.stable, pair.mirror
        if stable.error is not None:
            self.stable_errors += 1  # nothing to compare the mirror with
            kind = "stable_error"
        elif mirror.error is not None:
            self.mirror_errors += 1
            kind = "mirror_error"
        elif stable.status != mirror.status:
            self.status_mismatches += 1
            kind = "status"
        elif stable.digest != mirror.digest:
            self.body_mismatches += 1
            kind = "body"
        else:
            self.matched += 1
            kind = None
        if kind not in ("stable_error", "mirror_error"):  # an error's time says nothing
            self._latencies.append((stable.seconds or 0.0, mirror.seconds or 0.0))
        if kind is not None:
            self._samples.append(
                {
                    "kind": kind,
                    "method": pair.method,
                    "path": pair.path[:200],
                    "stable": stable.as_json(),
                    "mirror": mirror.as_json(),
                }
            )

    def as_json(self) -> dict[str, Any]:
        judged = self.compared - self.stable_errors
        mismatched = self.status_mismatches + self.body_mismatches + self.mirror_errors
        stable = [s for s, _ in self._latencies]
        mirror = [m for _, m in self._latencies]
        difference = [m - s for s, m in self._latencies]
        return {
            "compared": self.compared,
            "matched": self.matched,
            "status_mismatches": self.status_mismatches,
            "body_mismatches": self.body_mismatches,
            "mirror_errors": self.mirror_errors,
            "stable_errors": self.stable_errors,
            "mismatch_rate": mismatched / judged if judged else None,
            "latency_ms": {
                "stable_p50": _ms(_quantile(stable, 0.5)),
                "stable_p99": _ms(_quantile(stable, 0.99)),
                "mirror_p50": _ms(_quantile(mirror, 0.5)),
                "mirror_p99": _ms(_quantile(mirror, 0.99)),
                "difference_p50": _ms(_quantile(difference, 0.5)),
            },
            "samples": list(self._samples),
        }
