"""A/B experiment statistics, pure: per-variant conversion rates, the lift, the sample-ratio
mismatch check and a verdict that stays valid however often it is looked at.

- **Rates**: each variant's conversions / exposures with an always-valid (1 - alpha) confidence
  sequence (``strategies.analysis.sequential.rate_interval``: the canary judge's own, a
  beta-binomial mixture), so the intervals on the page may be read at any time.
- **Lift**: (treatment - control) / control. Its interval comes from an always-valid
  confidence sequence for the odds ratio (``OddsRatioSequence``): the same sequential test,
  inverted -- an odds ratio r is ruled out once the test against r has crossed -- read as a
  lift at the control's observed rate. It leaves 0 out exactly when the verdict is in.
- **Sample-ratio mismatch**: Pearson's chi-square of the exposures against the shares the
  variants' weights promise, with its p-value (the upper tail of chi-square, computed here); a
  p-value below ``SRM_P`` means the assignment or the logging is broken and no verdict stands.
- **Verdict**: the canary judge's sequential test (``strategies.analysis.sequential``) run in
  both directions per treatment: conversions play the part of the canary's errors, so "the
  treatment converts more" is the canary test with the treatment as the canary, and "less" is
  the same with the arms swapped. Each is a mixture martingale (Ville's inequality): the chance
  that it EVER crosses 1/alpha' under no difference is at most alpha', however many looks.
  alpha' = alpha / (2 * treatments) (two directions, Bonferroni across treatments). The
  alternatives are the small odds ratios A/B tests live on (``RATIOS``), not a canary's.
- **Time still needed**: at today's traffic (exposures per hour) and the rates seen so far (or,
  when no difference is emerging, a difference of the minimum detectable effect), the hours
  until the mixture would cross, projecting each hour's expected counts through the same
  likelihood ratios. An estimate, labelled as one.

Looks are whatever the caller feeds ``advance`` (``flags.experiments``: closed minutes), in
cumulative counts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from strategies.analysis.sequential import SequentialState, look_log_ratios, rate_interval

ALPHA = 0.05
SRM_P = 0.001
# odds ratios an A/B test cares about (a canary's start at 1.5)
RATIOS = (1.02, 1.05, 1.1, 1.2, 1.5, 2.0, 3.0)
PROJECTION_HOURS = 24 * 90  # "time still needed" is not projected further than this


# --- chi-square ------------------------------------------------------------------------------


def _gamma_p_series(a: float, x: float) -> float:
    term = total = 1.0 / a
    ap = a
    for _ in range(10_000):
        ap += 1
        term *= x / ap
        total += term
        if abs(term) < abs(total) * 1e-16:
            break
    return total * math.exp(-x + a * math.log(x) - math.lgamma(a))


def _gamma_q_fraction(a: float, x: float) -> float:
    # Lentz's continued fraction for the upper incomplete gamma function
    tiny = 1e-300
    b = x + 1 - a
    c = 1 / tiny
    d = 1 / b
    h = d
    for i in range(1, 10_000):
        an = -i * (i - a)
        b += 2
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1 / d
        delta = d * c
        h *= delta
        if abs(delta - 1) < 1e-16:
            break
    return math.exp(-x + a * math.log(x) - math.lgamma(a)) * h


def chi_square_sf(statistic: float, df: int) -> float:
    """P(X >= statistic) for X chi-square with ``df`` degrees of freedom."""
    if df <= 0:
        raise ValueError("degrees of freedom must be positive")
    if statistic <= 0:
        return 1.0
    a, x = df / 2, statistic / 2
    if x < a + 1:
        return max(0.0, 1.0 - _gamma_p_series(a, x))
    return min(1.0, _gamma_q_fraction(a, x))


@dataclass(frozen=True)
class Mismatch:
    statistic: float
    p_value: float
    expected: tuple[float, ...]

    @property
    def mismatched(self) -> bool:
        return self.p_value < SRM_P


def sample_ratio(exposures: Sequence[int], weights: Sequence[float]) -> Mismatch | None:
    """Pearson's chi-square of ``exposures`` against the shares ``weights`` promise (None with
    fewer than two weighted variants or no exposures)."""
    pairs = [(n, w) for n, w in zip(exposures, weights, strict=True) if w > 0]
    total, weight = sum(n for n, _ in pairs), sum(w for _, w in pairs)
    if len(pairs) < 2 or total <= 0:
        return None
    expected = tuple(total * w / weight for _, w in pairs)
    statistic = sum((n - e) ** 2 / e for (n, _), e in zip(pairs, expected, strict=True))
    return Mismatch(statistic, chi_square_sf(statistic, len(pairs) - 1), expected)


# --- rates and lift --------------------------------------------------------------------------


def rate(conversions: int, exposures: int, alpha: float = ALPHA):
    """(rate, (low, high)) with the always-valid interval; (None, None) without exposures."""
    if exposures <= 0:
        return None, None
    return conversions / exposures, rate_interval(min(conversions, exposures), exposures, alpha)


def lift(control: tuple[int, int], treatment: tuple[int, int]) -> float | None:
    """The treatment's rate over the control's, minus 1, from (conversions, exposures) of
    each; None while the control has no conversions."""
    (cc, cn), (tc, tn) = control, treatment
    if cn <= 0 or tn <= 0 or cc <= 0:
        return None
    return (tc / tn) / (cc / cn) - 1


# --- the sequential verdict ------------------------------------------------------------------


def _state(data: dict | None) -> SequentialState:
    state = SequentialState.from_dict(data)
    return state if data else SequentialState(ratios=RATIOS)


@dataclass(frozen=True)
class Comparison:
    """One treatment against the control: the test that it converts more (``up``: the
    treatment is the canary) and less (``down``: the control is)."""

    up: SequentialState
    down: SequentialState

    @classmethod
    def from_dict(cls, data: dict | None) -> Comparison:
        data = data or {}
        return cls(_state(data.get("up")), _state(data.get("down")))

    def to_dict(self) -> dict:
        return {"up": self.up.to_dict(), "down": self.down.to_dict()}

    def advance(self, control: tuple[int, int], treatment: tuple[int, int]) -> Comparison:
        """The look at CUMULATIVE (conversions, exposures) of each arm."""
        (cc, cn), (tc, tn) = control, treatment
        return Comparison(self.up.advance(tn, tc, cn, cc), self.down.advance(cn, cc, tn, tc))

    def verdict(self, alpha: float) -> str:
        """ "better", "worse" or "inconclusive" at the per-direction level ``alpha``."""
        if self.up.rejects(alpha):
            return "better"
        if self.down.rejects(alpha):
            return "worse"
        return "inconclusive"


# the odds ratios (treatment's odds of converting over the control's) the interval is read on
NULL_GRID = tuple(2 ** (k / 16) for k in range(-16, 17))  # 0.5 .. 2, steps of 4.4 %


@dataclass(frozen=True)
class OddsRatioSequence:
    """An always-valid confidence sequence for the odds ratio (the treatment's odds of
    converting over the control's), by inverting the same test on ``NULL_GRID``: once the canary
    judge's test of "the odds ratio is above r" has crossed, every ratio up to r is ruled out
    (``above``); once "below r" has (the arms swapped, null 1/r), every ratio from r on is
    (``below``). Ruled out stays ruled out (the running intersection is valid too). At r = 1 the
    tests are ``Comparison``'s, so a verdict puts 1 outside the interval."""

    above: tuple[SequentialState, ...]
    below: tuple[SequentialState, ...]
    above_out: tuple[bool, ...]
    below_out: tuple[bool, ...]

    @classmethod
    def from_dict(cls, data: dict | None) -> OddsRatioSequence:
        data = data or {}
        n = len(NULL_GRID)
        return cls(
            tuple(_state(d) for d in data.get("above") or [None] * n),
            tuple(_state(d) for d in data.get("below") or [None] * n),
            tuple(bool(v) for v in data.get("above_out") or [False] * n),
            tuple(bool(v) for v in data.get("below_out") or [False] * n),
        )

    def to_dict(self) -> dict:
        return {
            "above": [s.to_dict() for s in self.above],
            "below": [s.to_dict() for s in self.below],
            "above_out": list(self.above_out),
            "below_out": list(self.below_out),
        }

    def advance(
        self, control: tuple[int, int], treatment: tuple[int, int], alpha: float
    ) -> OddsRatioSequence:
        (cc, cn), (tc, tn) = control, treatment
        above, below, above_out, below_out = [], [], [], []
        for i, r in enumerate(NULL_GRID):
            up, down = self.above[i], self.below[i]
            if not self.above_out[i]:  # once crossed, it needs no more looks
                up = up.advance(tn, tc, cn, cc, null_ratio=r)
            if not self.below_out[i]:
                down = down.advance(cn, cc, tn, tc, null_ratio=1 / r)
            above.append(up)
            below.append(down)
            above_out.append(self.above_out[i] or up.rejects(alpha))
            below_out.append(self.below_out[i] or down.rejects(alpha))
        return OddsRatioSequence(tuple(above), tuple(below), tuple(above_out), tuple(below_out))

    def interval(self) -> tuple[float | None, float | None]:
        """(low, high): the odds ratio is above ``low`` and below ``high``; None for a bound
        not yet inside the grid (below 0.5, above 2)."""
        lows = [r for r, out in zip(NULL_GRID, self.above_out, strict=True) if out]
        highs = [r for r, out in zip(NULL_GRID, self.below_out, strict=True) if out]
        return (max(lows) if lows else None), (min(highs) if highs else None)


def lift_at(odds_ratio: float | None, control_rate: float) -> float | None:
    """The relative lift an odds ratio means at the control's conversion rate."""
    if odds_ratio is None:
        return None
    p = control_rate
    return odds_ratio / (1 - p + odds_ratio * p) - 1


def per_direction_alpha(alpha: float, treatments: int) -> float:
    return alpha / (2 * max(1, treatments))


def _mixture(logs: Sequence[float]) -> float:
    top = max(logs)
    if top > 700:
        return math.inf
    return sum(math.exp(v) for v in logs) / len(logs)


def hours_needed(
    state: SequentialState,
    canary: tuple[float, float],
    baseline: tuple[float, float],
    alpha: float,
    horizon: int = PROJECTION_HOURS,
) -> int | None:
    """Hours until ``state`` (one direction) would reach 1/alpha if each hour brought the
    expected counts: ``canary`` and ``baseline`` are (exposures per hour, conversion rate).
    0 when it already has; None when it would not within ``horizon`` hours."""
    if state.rejects(alpha):
        return 0
    (n1, p1), (n2, p2) = canary, baseline
    n1, n2 = round(n1), round(n2)
    k1, k2 = round(n1 * p1), round(n2 * p2)
    if n1 <= 0 or n2 <= 0:
        return None
    step = look_log_ratios(n1, k1, n2, k2, state.ratios)
    logs = list(state.log_e or (0.0,) * len(state.ratios))
    if max(step) <= 0:
        return None
    threshold = 1 / alpha
    for hour in range(1, horizon + 1):
        logs = [a + b for a, b in zip(logs, step, strict=True)]
        if _mixture(logs) >= threshold:
            return hour
    return None
