"""An always-valid test that the canary is slower than the baseline, and a non-inferiority check.

Latency is turned into the question the error-rate test already answers exactly: *is a request
slower than a threshold?* At the first look where the baseline has enough requests, the test
fixes its thresholds -- the baseline's quantiles in ``QUANTILES`` (p50, p90, p99), snapped to
the histogram's bucket edges -- and from then on, at each look, counts per arm how many of the
requests answered since the previous look were slower than each threshold. Given those counts,
the canary's share of the slow requests follows the hypergeometric law when both arms are alike,
whatever the latency distribution is and however it drifts with load (both arms are measured
over the same seconds); so ``sequential.look_log_ratios`` gives, per threshold and per odds
ratio, a likelihood-ratio martingale, and their average (equal weights) is one too. By Ville's
inequality the chance that it ever reaches 1/alpha is at most alpha, at any number of looks:
the test may look every second without inflating false rollbacks. A shift of the whole
distribution shows at the p50 threshold within seconds; a regression of a few requests only in
the tail (p99).

Non-inferiority, at ``percentile`` q (p95 by default) with ``margin`` m (20%): with R the
baseline's q-quantile when the thresholds were fixed (the upper edge of its bucket) and
L = (1 + m) x the lower edge of that bucket (snapped down to an edge), the canary is *not worse
by more than the margin* when its share of requests slower than L is below the baseline's share
slower than R -- then the canary's quantile at that level is at most L, at most (1 + m) times
the baseline's. The test shows it when the always-valid upper bound of the canary's share is
below the always-valid lower bound of the baseline's (each at half of 1 - ``confidence``).
When the buckets are too coarse for that (L <= R) it can never pass, and says so.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field

from strategies.analysis.sequential import RATIOS, look_log_ratios, rate_interval
from strategies.analysis.series import INF, Series

QUANTILES = (0.5, 0.9, 0.99)


def edges(series: Series) -> list[float] | None:
    """The finite bucket edges of a histogram (0 included), None for raw values."""
    if series.buckets is None:
        return None
    return sorted({0.0} | {b for b, _ in series.buckets if b != INF})


def snap_up(value: float, bounds: list[float] | None) -> float:
    if not bounds:
        return value
    i = bisect_left(bounds, value)
    return bounds[i] if i < len(bounds) else bounds[-1]


def snap_down(value: float, bounds: list[float] | None) -> float:
    if not bounds:
        return value
    i = bisect_right(bounds, value) - 1
    return bounds[max(i, 0)]


def below_edge(value: float, bounds: list[float] | None) -> float:
    """The edge just below ``value`` (the lower edge of its bucket); ``value`` for raw values."""
    if not bounds:
        return value
    i = bisect_left(bounds, value) - 1
    return bounds[max(i, 0)]


def count_above(series: Series, threshold: float) -> float:
    """How many observations are slower than ``threshold`` (for a histogram, a bucket edge: the
    buckets whose lower edge is at or above it)."""
    if series.buckets is not None:
        out, lower = 0.0, 0.0
        for upper, count in sorted(series.buckets):
            if lower >= threshold:
                out += count
            if upper != INF:
                lower = upper
        return out
    return sum(w for v, w in series.pairs() if not math.isnan(v) and v > threshold)


@dataclass(frozen=True)
class QuantileState:
    """The running test. ``thresholds`` are fixed at the first look with enough baseline data;
    ``counts`` are the cumulative ``[canary_total, baseline_total, canary_above..., baseline_
    above...]`` at the previous look, ``since`` the same when the thresholds were fixed."""

    thresholds: tuple[float, ...] = ()
    reference: float | None = None  # R: the baseline's ``percentile`` (its bucket's upper edge)
    reference_low: float | None = None  # the lower edge of that bucket
    limit: float | None = None  # L: (1 + margin) x reference_low, snapped down
    log_e: tuple[float, ...] = ()
    counts: tuple[float, ...] = ()
    since: tuple[float, ...] = ()
    looks: int = 0
    ratios: tuple[float, ...] = field(default=RATIOS)

    @classmethod
    def from_dict(cls, data: dict | None) -> QuantileState:
        if not data:
            return cls()

        def floats(key: str) -> tuple[float, ...]:
            return tuple(float(v) for v in data.get(key) or ())

        def optional(key: str) -> float | None:
            return None if data.get(key) is None else float(data[key])

        return cls(
            thresholds=floats("thresholds"),
            reference=optional("reference"),
            reference_low=optional("reference_low"),
            limit=optional("limit"),
            log_e=floats("log_e"),
            counts=floats("counts"),
            since=floats("since"),
            looks=int(data.get("looks", 0)),
            ratios=tuple(float(r) for r in data.get("ratios") or RATIOS),
        )

    def to_dict(self) -> dict:
        return {
            "thresholds": list(self.thresholds),
            "reference": self.reference,
            "reference_low": self.reference_low,
            "limit": self.limit,
            "log_e": list(self.log_e),
            "counts": list(self.counts),
            "since": list(self.since),
            "looks": self.looks,
            "ratios": list(self.ratios),
        }

    @property
    def started(self) -> bool:
        return bool(self.thresholds)

    def _cuts(self) -> list[float]:
        return [*self.thresholds, self.limit, self.reference]

    def _counts(self, canary: Series, baseline: Series) -> tuple[float, ...]:
        cuts = self._cuts()
        return (
            canary.count,
            baseline.count,
            *(count_above(canary, t) for t in cuts),
            *(count_above(baseline, t) for t in cuts),
        )

    def advance(
        self,
        canary: Series,
        baseline: Series,
        *,
        percentile: float,
        margin: float,
        null_ratio: float = 1.0,
        min_samples: float = 50,
    ) -> QuantileState:
        """The state after a look at the CUMULATIVE window (since it began)."""
        if not self.started:
            if baseline.count < min_samples:
                return self
            bounds = edges(baseline)
            found = [baseline.quantile(q) for q in QUANTILES]
            thresholds = sorted({snap_up(v, bounds) for v in found if v is not None})
            target = baseline.quantile(percentile) or 0.0
            reference = snap_up(target, bounds)
            low = below_edge(reference, bounds) if bounds else target
            fixed = QuantileState(
                thresholds=tuple(thresholds),
                reference=reference,
                reference_low=low,
                limit=snap_down((1 + margin) * low, bounds),
                ratios=self.ratios,
            )
            counts = fixed._counts(canary, baseline)
            return QuantileState(
                **{**fixed.__dict__, "counts": counts, "since": counts, "looks": self.looks + 1}
            )
        counts = self._counts(canary, baseline)
        k = len(self._cuts())
        d = [max(0.0, a - b) for a, b in zip(counts, self.counts, strict=True)]
        d_ct, d_bt = int(d[0]), int(d[1])
        step: list[float] = []
        for i in range(len(self.thresholds)):
            d_ca = min(d_ct, int(d[2 + i]))
            d_ba = min(d_bt, int(d[2 + k + i]))
            step += look_log_ratios(d_ct, d_ca, d_bt, d_ba, self.ratios, null_ratio)
        before = self.log_e or (0.0,) * len(step)
        return QuantileState(
            **{
                **self.__dict__,
                "log_e": tuple(a + b for a, b in zip(before, step, strict=True)),
                "counts": tuple(max(a, b) for a, b in zip(counts, self.counts, strict=True)),
                "looks": self.looks + 1,
            }
        )

    @property
    def e_value(self) -> float:
        if not self.log_e:
            return 1.0
        if max(self.log_e) > 700:
            return math.inf
        return sum(math.exp(v) for v in self.log_e) / len(self.log_e)

    def rejects(self, alpha: float) -> bool:
        return self.e_value >= 1 / alpha

    def shares(self) -> dict[str, float | int | None]:
        """Since the thresholds were fixed: requests per arm, and the canary's share slower than
        the limit L and the baseline's share slower than the reference R."""
        if not self.started:
            return {"canary_total": 0, "baseline_total": 0, "canary_slow": 0, "baseline_slow": 0}
        k = len(self._cuts())
        d = [a - b for a, b in zip(self.counts, self.since, strict=True)]
        n = len(self.thresholds)
        return {
            "canary_total": int(d[0]),
            "baseline_total": int(d[1]),
            "canary_slow": int(d[2 + n]),  # above the limit
            "baseline_slow": int(d[2 + k + n + 1]),  # above the reference
        }

    def coarse(self) -> bool:
        """The buckets are too coarse to show the canary within the margin (L <= R)."""
        return (
            self.limit is not None and self.reference is not None and self.limit <= self.reference
        )

    def within_margin(self, alpha: float) -> tuple[bool, dict | None]:
        """Whether the data rule out a shift larger than the margin at (1 - alpha), and the
        intervals (canary's share above L, baseline's share above R) that say so."""
        s = self.shares()
        c = rate_interval(s["canary_slow"], s["canary_total"], alpha / 2)
        b = rate_interval(s["baseline_slow"], s["baseline_total"], alpha / 2)
        if c is None or b is None:
            return False, None
        return (not self.coarse() and c[1] < b[0]), {"canary": c, "baseline": b}

    def worse_than_margin(self) -> bool:
        """The point estimates put the canary beyond the margin (its share slower than L is
        above the baseline's share slower than R): the guard on a rollback."""
        s = self.shares()
        if not s["canary_total"] or not s["baseline_total"]:
            return False
        return s["canary_slow"] / s["canary_total"] > s["baseline_slow"] / s["baseline_total"]


def relative_width(reference: float | None, low: float | None) -> float | None:
    """How wide the baseline's percentile bucket is, relative to its lower edge."""
    if reference is None or low is None or low <= 0:
        return None
    return reference / low - 1


def describe_thresholds(values: Sequence[float]) -> str:
    return ", ".join(f"{v:.3g}" for v in values)
