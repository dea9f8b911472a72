"""One arm's data for one metric over a window, and how it is described.

A ``Series`` holds observations as ``values`` with optional integer-like ``weights`` (how many
times each value was seen: a latency histogram becomes one value per bucket weighted by its
count), plus what only some sources know: request counts (``total``, ``errors``: the error-rate
test needs them), the exact ``sum`` of the observations (a histogram's ``_sum``: the exact mean)
and the histogram itself (``buckets``: ``(upper bound, count)`` pairs, non-cumulative, the last
bound ``inf``) for interpolated quantiles, as Prometheus' ``histogram_quantile`` does.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

INF = float("inf")
NAN_STRATEGIES = ("remove", "replace")
IQR_FACTOR = 3.0  # Kayenta's default for its IQR outlier detector


@dataclass(frozen=True)
class Series:
    values: tuple[float, ...] = ()
    weights: tuple[float, ...] | None = None
    total: int | None = None
    errors: int | None = None
    sum: float | None = None
    buckets: tuple[tuple[float, float], ...] | None = field(default=None)

    # -- construction ---------------------------------------------------------------------------

    @classmethod
    def from_dict(cls, data: dict[str, Any] | Series | None) -> Series:
        if isinstance(data, Series):
            return data
        data = data or {}
        weights = data.get("weights")
        buckets = data.get("buckets")
        if buckets and data.get("values") is None:  # a histogram alone: derive the observations
            bounds = [_number(b) for b, _ in buckets]
            series = cls.from_histogram(bounds, [float(c) for _, c in buckets], data.get("sum"))
            return cls(
                values=series.values,
                weights=series.weights,
                total=int(data["total"]) if data.get("total") is not None else series.total,
                errors=int(data["errors"]) if data.get("errors") is not None else None,
                sum=series.sum,
                buckets=series.buckets,
            )
        return cls(
            values=tuple(_number(v) for v in data.get("values") or ()),
            weights=tuple(float(w) for w in weights) if weights is not None else None,
            total=int(data["total"]) if data.get("total") is not None else None,
            errors=int(data["errors"]) if data.get("errors") is not None else None,
            sum=float(data["sum"]) if data.get("sum") is not None else None,
            buckets=tuple((_number(b), float(c)) for b, c in buckets) if buckets else None,
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"values": [_json_number(v) for v in self.values]}
        if self.weights is not None:
            out["weights"] = list(self.weights)
        for name in ("total", "errors", "sum"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        if self.buckets is not None:
            out["buckets"] = [[_json_number(b), c] for b, c in self.buckets]
        return out

    @classmethod
    def from_counts(cls, total: int, errors: int) -> Series:
        """Requests as 0/1 observations (1 = an error), weighted: a proportion as a series."""
        total, errors = max(0, int(total)), max(0, int(errors))
        errors = min(errors, total)
        pairs = [(0.0, float(total - errors)), (1.0, float(errors))]
        pairs = [(v, w) for v, w in pairs if w > 0]
        return cls(
            values=tuple(v for v, _ in pairs),
            weights=tuple(w for _, w in pairs),
            total=total,
            errors=errors,
            sum=float(errors),
        )

    @classmethod
    def from_histogram(
        cls, bounds: Sequence[float], counts: Sequence[float], total_sum: float | None = None
    ) -> Series:
        """A histogram (``bounds`` ascending, the last ``inf``; ``counts`` per bucket, NOT
        cumulative) as weighted observations: each bucket's count at a representative value
        (the middle of the bucket; the open last bucket at 1.5x the last finite bound)."""
        values, weights, lower = [], [], 0.0
        finite = [b for b in bounds if b != INF]
        for upper, count in zip(bounds, counts, strict=True):
            if count > 0:
                if upper == INF:
                    values.append(1.5 * finite[-1] if finite else 0.0)
                else:
                    values.append((lower + upper) / 2)
                weights.append(float(count))
            if upper != INF:
                lower = upper
        return cls(
            values=tuple(values),
            weights=tuple(weights),
            total=int(sum(counts)),
            sum=total_sum,
            buckets=tuple((float(b), float(c)) for b, c in zip(bounds, counts, strict=True)),
        )

    # -- reading --------------------------------------------------------------------------------

    def pairs(self) -> list[tuple[float, float]]:
        """``(value, weight)`` for every observation with a positive weight, in input order."""
        weights = self.weights if self.weights is not None else (1.0,) * len(self.values)
        return [(v, w) for v, w in zip(self.values, weights, strict=True) if w > 0]

    @property
    def count(self) -> float:
        return sum(w for _, w in self.pairs())

    @property
    def has_nan(self) -> bool:
        return any(math.isnan(v) for v in self.values)

    def mean(self) -> float | None:
        pairs = [(v, w) for v, w in self.pairs() if not math.isnan(v)]
        n = sum(w for _, w in pairs)
        if n <= 0:
            return None
        if self.sum is not None and not self.has_nan:
            return self.sum / n
        return sum(v * w for v, w in pairs) / n

    def quantile(self, q: float) -> float | None:
        if self.buckets is not None:
            return histogram_quantile(self.buckets, q)
        return weighted_quantile([(v, w) for v, w in self.pairs() if not math.isnan(v)], q)

    def describe(self) -> dict[str, Any]:
        """``{"count", "mean", "p50", "p95", "p99"}`` (None where there is nothing to describe),
        plus ``total``/``errors``/``rate`` for request counts."""
        out: dict[str, Any] = {
            "count": _round(self.count),
            "mean": _round(self.mean()),
            "p50": _round(self.quantile(0.50)),
            "p95": _round(self.quantile(0.95)),
            "p99": _round(self.quantile(0.99)),
        }
        if self.total is not None:
            out["total"] = self.total
            out["errors"] = self.errors or 0
            out["rate"] = _round((self.errors or 0) / self.total) if self.total else None
        return out

    # -- cleaning -------------------------------------------------------------------------------

    def without_nan(self, strategy: str = "remove") -> Series:
        """NaN observations removed (``remove``) or counted as 0 (``replace``)."""
        if strategy not in NAN_STRATEGIES:
            raise ValueError(f"unknown NaN strategy {strategy!r}")
        if not self.has_nan:
            return self
        pairs = self.pairs()
        if strategy == "remove":
            pairs = [(v, w) for v, w in pairs if not math.isnan(v)]
        else:
            pairs = [(0.0 if math.isnan(v) else v, w) for v, w in pairs]
        return Series(
            values=tuple(v for v, _ in pairs),
            weights=tuple(w for _, w in pairs),
            total=self.total,
            errors=self.errors,
        )

    def without_outliers(self, factor: float = IQR_FACTOR) -> Series:
        """Observations outside [Q1 - factor*IQR, Q3 + factor*IQR] removed (Kayenta's IQR
        detector). The exact sum and the histogram no longer describe what is left: dropped."""
        pairs = [(v, w) for v, w in self.pairs() if not math.isnan(v)]
        q1, q3 = weighted_quantile(pairs, 0.25), weighted_quantile(pairs, 0.75)
        if q1 is None or q3 is None:
            return self
        iqr = q3 - q1
        low, high = q1 - factor * iqr, q3 + factor * iqr
        kept = [(v, w) for v, w in pairs if low <= v <= high]
        if len(kept) == len(pairs):
            return self
        return Series(
            values=tuple(v for v, _ in kept),
            weights=tuple(w for _, w in kept),
            total=self.total,
            errors=self.errors,
        )


def weighted_quantile(pairs: Iterable[tuple[float, float]], q: float) -> float | None:
    """The ``q`` quantile by linear interpolation between order statistics (numpy's default
    "linear" method), with each value repeated ``weight`` times."""
    ordered = sorted(pairs)
    n = sum(w for _, w in ordered)
    if n <= 0:
        return None
    position = q * (n - 1)  # 0-based rank in the expanded sample
    below_index = math.floor(position)
    fraction = position - below_index

    def at(rank: float) -> float:
        seen = 0.0
        for value, weight in ordered:
            seen += weight
            if rank < seen:
                return value
        return ordered[-1][0]

    low = at(below_index)
    if fraction == 0:
        return low
    return low + (at(below_index + 1) - low) * fraction


def histogram_quantile(buckets: Sequence[tuple[float, float]], q: float) -> float | None:
    """Prometheus' ``histogram_quantile`` over non-cumulative ``(upper bound, count)`` buckets:
    linear interpolation inside the bucket holding the rank; the open last bucket answers its
    lower bound (the largest finite bound)."""
    total = sum(c for _, c in buckets)
    if total <= 0:
        return None
    rank = q * total
    lower, below = 0.0, 0.0
    for upper, count in buckets:
        if count > 0 and below + count >= rank:
            if upper == INF:
                return lower
            return lower + (upper - lower) * (rank - below) / count
        below += count
        if upper != INF:
            lower = upper
    return lower


def _number(value: Any) -> float:
    if isinstance(value, str):
        return {"NaN": math.nan, "+Inf": INF, "Inf": INF, "-Inf": -INF}.get(value, float(value))
    return float(value)


def _json_number(value: float) -> float | str:
    """JSON has no NaN or infinities: write them as Prometheus does."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return value


def _round(value: float | None, digits: int = 6) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return round(value, digits)
