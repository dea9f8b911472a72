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
baseline's q-quantile when the thresholds were fixed and L = (1 + m) R, the canary is *not
worse by more than the margin* when its share of requests slower than L is below the baseline's
share slower than R -- then the canary's quantile at that level is at most L, (1 + m) times the
baseline's. Whether the canary's odds of a request slower than L are below the baseline's odds of
one slower than R is again a question for the conditional test (given how many requests of each
side were "slow" in this sense, the canary's count is hypergeometric at odds ratio 1, and
stochastically larger above it): the mixture of likelihood ratios for odds ratios
``PASS_RATIOS`` against 1 is a supermartingale while the canary is NOT within the margin, so it
shows the canary within the margin when it reaches 1 / (1 - ``confidence``), with a chance of at
most 1 - ``confidence`` of passing a canary that is worse than that. With a
histogram, a bucket that straddles a threshold is counted against the canary: as slower than L
for the canary (``loose``), as not slower than R for the baseline (``strict``). So buckets
wider than the margin can never show a pass, and the verdict says so.

A rollback needs the evidence AND the canary's ``percentile`` over the window beyond (1 + m)
times the baseline's (``classify``): a real but small slowdown is not rolled back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from strategies.analysis.sequential import RATIOS, look_log_ratios, rate_interval
from strategies.analysis.series import INF, Series

QUANTILES = (0.5, 0.9, 0.99)
# the pass side's alternatives: the canary's odds of being slower than L are this times the
# baseline's odds of being slower than R (below 1: within the margin)
PASS_RATIOS = (0.8, 0.6, 0.4, 0.2)


def count_above(series: Series, threshold: float, *, loose: bool = False) -> float:
    """How many observations are slower than ``threshold``. For a histogram, a bucket that
    straddles it counts only when ``loose`` (strict: the buckets whose lower edge is at or above
    it; loose: the buckets whose upper edge is above it)."""
    if series.buckets is not None:
        out, lower = 0.0, 0.0
        for upper, count in sorted(series.buckets):
            if (upper > threshold) if loose else (lower >= threshold):
                out += count
            if upper != INF:
                lower = upper
        return out
    return sum(w for v, w in series.pairs() if not math.isnan(v) and v > threshold)


def bucket_width(series: Series, value: float | None) -> float | None:
    """The relative width (upper / lower - 1) of the histogram bucket holding ``value``; None
    for raw values, or when it starts at 0 or is open."""
    if series.buckets is None or value is None:
        return None
    lower = 0.0
    for upper, _ in sorted(series.buckets):
        if lower < value <= upper:
            return None if lower <= 0 or upper == INF else upper / lower - 1
        if upper != INF:
            lower = upper
    return None


@dataclass(frozen=True)
class QuantileState:
    """The running test. ``thresholds`` are fixed at the first look with enough baseline data;
    ``counts`` are the cumulative ``[canary_total, baseline_total, canary_above..., baseline_
    above...]`` at the previous look, ``since`` the same when the thresholds were fixed."""

    thresholds: tuple[float, ...] = ()
    reference: float | None = None  # R: the baseline's ``percentile`` when they were fixed
    limit: float | None = None  # L: (1 + margin) x R
    width: float | None = None  # the relative width of the buckets at R and at L (the wider)
    log_e: tuple[float, ...] = ()
    log_pass: tuple[float, ...] = ()
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
            limit=optional("limit"),
            width=optional("width"),
            log_e=floats("log_e"),
            log_pass=floats("log_pass"),
            counts=floats("counts"),
            since=floats("since"),
            looks=int(data.get("looks", 0)),
            ratios=tuple(float(r) for r in data.get("ratios") or RATIOS),
        )

    def to_dict(self) -> dict:
        return {
            "thresholds": list(self.thresholds),
            "reference": self.reference,
            "limit": self.limit,
            "width": self.width,
            "log_e": list(self.log_e),
            "log_pass": list(self.log_pass),
            "counts": list(self.counts),
            "since": list(self.since),
            "looks": self.looks,
            "ratios": list(self.ratios),
        }

    @property
    def started(self) -> bool:
        return bool(self.thresholds)

    def _counts(self, canary: Series, baseline: Series) -> tuple[float, ...]:
        """``[canary_total, baseline_total, canary above each threshold..., baseline above
        each threshold..., canary above L (loose), canary above L (strict), baseline above R
        (strict), baseline above R (loose)]``."""
        return (
            canary.count,
            baseline.count,
            *(count_above(canary, t) for t in self.thresholds),
            *(count_above(baseline, t) for t in self.thresholds),
            count_above(canary, self.limit, loose=True),
            count_above(canary, self.limit),
            count_above(baseline, self.reference),
            count_above(baseline, self.reference, loose=True),
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
            # enough baseline data for its percentile: ~10 requests above it (200 for p95)
            if baseline.count < max(min_samples, 10 / (1 - percentile)):
                return self
            found = [baseline.quantile(q) for q in QUANTILES]
            reference = baseline.quantile(percentile) or 0.0
            limit = (1 + margin) * reference
            widths = (bucket_width(baseline, reference), bucket_width(baseline, limit))
            fixed = QuantileState(
                thresholds=tuple(sorted({v for v in found if v is not None})),
                reference=reference,
                limit=limit,
                width=max((w for w in widths if w is not None), default=None),
                ratios=self.ratios,
            )
            counts = fixed._counts(canary, baseline)
            return QuantileState(
                **{**fixed.__dict__, "counts": counts, "since": counts, "looks": self.looks + 1}
            )
        counts = self._counts(canary, baseline)
        n = len(self.thresholds)
        d = [max(0.0, a - b) for a, b in zip(counts, self.counts, strict=True)]
        d_ct, d_bt = int(d[0]), int(d[1])
        step: list[float] = []
        for i in range(n):
            d_ca = min(d_ct, int(d[2 + i]))
            d_ba = min(d_bt, int(d[2 + n + i]))
            step += look_log_ratios(d_ct, d_ca, d_bt, d_ba, self.ratios, null_ratio)
        before = self.log_e or (0.0,) * len(step)
        # the pass side: canary slower than L (loose) against baseline slower than R (strict)
        d_cs = min(d_ct, int(d[2 + 2 * n]))
        d_bs = min(d_bt, int(d[2 + 2 * n + 2]))
        passing = look_log_ratios(d_ct, d_cs, d_bt, d_bs, PASS_RATIOS, 1.0)
        before_pass = self.log_pass or (0.0,) * len(PASS_RATIOS)
        return QuantileState(
            **{
                **self.__dict__,
                "log_e": tuple(a + b for a, b in zip(before, step, strict=True)),
                "log_pass": tuple(a + b for a, b in zip(before_pass, passing, strict=True)),
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

    @property
    def pass_value(self) -> float:
        """The evidence that the canary is within the margin (1.0 before any)."""
        if not self.log_pass:
            return 1.0
        if max(self.log_pass) > 700:
            return math.inf
        return sum(math.exp(v) for v in self.log_pass) / len(self.log_pass)

    def shares(self) -> dict[str, int]:
        """Since the thresholds were fixed: requests per arm, the canary's requests slower than
        the limit L and the baseline's slower than the reference R (``slow``: counted against
        the canary, as the pass needs; ``guard``: in its favour)."""
        keys = ("canary_total", "baseline_total", "canary_slow", "canary_slow_guard")
        keys += ("baseline_slow", "baseline_slow_guard")
        if not self.started:
            return dict.fromkeys(keys, 0)
        d = [int(a - b) for a, b in zip(self.counts, self.since, strict=True)]
        n = len(self.thresholds)
        return dict(zip(keys, [d[0], d[1], *d[2 + 2 * n :]], strict=True))

    def coarse(self) -> bool:
        """The buckets at R or L are wider than the margin: a pass cannot be shown."""
        return self.width is not None and self.width >= self.limit / self.reference - 1

    def within_margin(self, alpha: float) -> tuple[bool, dict | None]:
        """Whether the data rule out a shift larger than the margin at (1 - alpha): the evidence
        for it (the pass martingale) reached 1/alpha. Also each side's always-valid share, to
        show."""
        s = self.shares()
        c = rate_interval(s["canary_slow"], s["canary_total"], alpha / 2)
        b = rate_interval(s["baseline_slow"], s["baseline_total"], alpha / 2)
        if c is None or b is None:
            return False, None
        return self.pass_value >= 1 / alpha, {"canary": c, "baseline": b}
