"""An always-valid test that the canary's error rate is higher than the baseline's.

The data arrive in looks: at each one, the requests and errors each arm answered since the last.
Within a look, given how many requests each arm answered (n1 canary, n2 baseline) and how many
errors there were in all (E), the canary's share of those errors k follows, when both arms fail
alike, the hypergeometric law -- whatever that common error rate is, and however it drifts from
one look to the next (a noisy baseline moves both arms). If the canary's odds of failing are psi
times the baseline's, k follows Fisher's noncentral hypergeometric law with odds ratio psi.

For each alternative psi in ``RATIOS`` the product over looks of the likelihood ratio (psi
against ``null_ratio``) is a nonnegative martingale when the canary is no worse (a supermartingale
for any odds ratio below ``null_ratio``); their average -- the mixture, with equal prior weights
-- is one too. By Ville's inequality the chance that it EVER reaches 1/alpha is at most alpha,
however many looks are taken, whenever they are taken. So the test may look every second and
stop at the first crossing: its false-rollback rate stays below alpha.

Reported alongside: each arm's error rate with an always-valid (1 - alpha) confidence sequence
(Robbins' beta-binomial mixture, Jeffreys prior), so a person can see how sure the figures are;
``classify`` passes a canary when those bounds rule out a difference larger than the margin.

Non-inferiority by ratio (``margin_ratio`` R): the same conditional likelihood ratios, for odds
ratios ``PASS_RATIOS`` x R against R, make a supermartingale while the canary's odds of failing
are at least R times the baseline's; reaching 1/(1 - confidence) shows it is within R.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

RATIOS = (1.5, 2.0, 3.0, 5.0, 10.0, 30.0, 100.0, 1000.0)
ALPHA = 0.005
# non-inferiority by ratio: alternatives at these multiples of the margin's odds ratio
PASS_RATIOS = (0.8, 0.6, 0.4, 0.2)


def _log_choose(n: int, k: int) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


def _logsumexp(values: Sequence[float]) -> float:
    top = max(values)
    return top + math.log(sum(math.exp(v - top) for v in values))


def look_log_ratios(
    canary_total: int,
    canary_errors: int,
    baseline_total: int,
    baseline_errors: int,
    ratios: Sequence[float] = RATIOS,
    null_ratio: float = 1.0,
) -> list[float]:
    """log likelihood ratio of one look, per alternative odds ratio (0.0: no information)."""
    n1, n2 = canary_total, baseline_total
    k = canary_errors
    e = canary_errors + baseline_errors
    if n1 <= 0 or n2 <= 0 or e <= 0 or e >= n1 + n2:
        return [0.0] * len(ratios)  # no errors, or nothing but errors: nothing to compare
    low, high = max(0, e - n2), min(n1, e)
    central = [_log_choose(n1, j) + _log_choose(n2, e - j) for j in range(low, high + 1)]
    log_null = math.log(null_ratio)
    norm_null = _logsumexp(
        [c + j * log_null for c, j in zip(central, range(low, high + 1), strict=True)]
    )
    out = []
    for psi in ratios:
        log_psi = math.log(psi * null_ratio)
        norm = _logsumexp(
            [c + j * log_psi for c, j in zip(central, range(low, high + 1), strict=True)]
        )
        out.append(k * (log_psi - log_null) + norm_null - norm)
    return out


@dataclass(frozen=True)
class SequentialState:
    """The running test: cumulative counts and, per alternative, the log of its martingale."""

    log_e: tuple[float, ...] = ()
    log_pass: tuple[float, ...] = ()  # the evidence for "within margin_ratio" (when given)
    canary_total: int = 0
    canary_errors: int = 0
    baseline_total: int = 0
    baseline_errors: int = 0
    looks: int = 0
    ratios: tuple[float, ...] = field(default=RATIOS)

    @classmethod
    def from_dict(cls, data: dict | None) -> SequentialState:
        if not data:
            return cls()
        return cls(
            log_e=tuple(float(v) for v in data.get("log_e") or ()),
            log_pass=tuple(float(v) for v in data.get("log_pass") or ()),
            canary_total=int(data.get("canary_total", 0)),
            canary_errors=int(data.get("canary_errors", 0)),
            baseline_total=int(data.get("baseline_total", 0)),
            baseline_errors=int(data.get("baseline_errors", 0)),
            looks=int(data.get("looks", 0)),
            ratios=tuple(float(r) for r in data.get("ratios") or RATIOS),
        )

    def to_dict(self) -> dict:
        return {
            "log_e": list(self.log_e),
            "log_pass": list(self.log_pass),
            "canary_total": self.canary_total,
            "canary_errors": self.canary_errors,
            "baseline_total": self.baseline_total,
            "baseline_errors": self.baseline_errors,
            "looks": self.looks,
            "ratios": list(self.ratios),
        }

    def advance(
        self,
        canary_total: int,
        canary_errors: int,
        baseline_total: int,
        baseline_errors: int,
        *,
        null_ratio: float = 1.0,
        margin_ratio: float | None = None,
    ) -> SequentialState:
        """The state after a look at CUMULATIVE counts (since the window began): the increments
        since the previous look are what the look adds (a count that went down adds nothing)."""
        d_ct = max(0, canary_total - self.canary_total)
        d_ce = min(d_ct, max(0, canary_errors - self.canary_errors))
        d_bt = max(0, baseline_total - self.baseline_total)
        d_be = min(d_bt, max(0, baseline_errors - self.baseline_errors))
        step = look_log_ratios(d_ct, d_ce, d_bt, d_be, self.ratios, null_ratio)
        before = self.log_e or (0.0,) * len(self.ratios)
        log_pass = self.log_pass
        if margin_ratio:  # odds ratio below margin_ratio: the same conditional test, mirrored
            passing = look_log_ratios(d_ct, d_ce, d_bt, d_be, PASS_RATIOS, margin_ratio)
            log_pass = tuple(
                a + b for a, b in zip(log_pass or (0.0,) * len(passing), passing, strict=True)
            )
        return SequentialState(
            log_e=tuple(a + b for a, b in zip(before, step, strict=True)),
            log_pass=log_pass,
            canary_total=max(self.canary_total, canary_total),
            canary_errors=max(self.canary_errors, canary_errors),
            baseline_total=max(self.baseline_total, baseline_total),
            baseline_errors=max(self.baseline_errors, baseline_errors),
            looks=self.looks + 1,
            ratios=self.ratios,
        )

    @property
    def e_value(self) -> float:
        """The mixture martingale now (1.0 before any evidence)."""
        if not self.log_e:
            return 1.0
        top = max(self.log_e)
        if top > 700:
            return math.inf
        return sum(math.exp(v) for v in self.log_e) / len(self.log_e)

    def rejects(self, alpha: float = ALPHA) -> bool:
        return self.e_value >= 1 / alpha

    @property
    def pass_value(self) -> float:
        """The evidence that the canary's odds of failing are below ``margin_ratio`` times the
        baseline's (a supermartingale while they are not): 1.0 before any, or without it."""
        if not self.log_pass:
            return 1.0
        if max(self.log_pass) > 700:
            return math.inf
        return sum(math.exp(v) for v in self.log_pass) / len(self.log_pass)


def rate_interval(errors: int, total: int, alpha: float = ALPHA) -> tuple[float, float] | None:
    """An always-valid (1 - alpha) confidence interval for an error rate from ``errors`` of
    ``total``: the rates p where the beta-binomial mixture (Beta(1/2, 1/2) prior) against p is
    below 1/alpha. None without requests."""
    if total <= 0:
        return None
    k, n = errors, total
    log_mixture = (
        math.lgamma(k + 0.5)
        + math.lgamma(n - k + 0.5)
        - math.lgamma(n + 1)
        - math.lgamma(0.5) * 2
        + math.lgamma(1.0)
    )
    limit = math.log(1 / alpha)

    def excess(p: float) -> float:  # log M(p) - log(1/alpha): > 0 means p is excluded
        log_lik = (k * math.log(p) if k else 0.0) + ((n - k) * math.log1p(-p) if n - k else 0.0)
        return log_mixture - log_lik - limit

    centre = k / n
    centre = min(max(centre, 1e-12), 1 - 1e-12)

    def solve(inside: float, outside: float) -> float:
        if excess(outside) <= 0:
            return outside
        for _ in range(80):
            middle = (inside + outside) / 2
            if excess(middle) > 0:
                outside = middle
            else:
                inside = middle
        return inside

    lower = 0.0 if k == 0 else solve(centre, 1e-15)
    upper = 1.0 if k == n else solve(centre, 1 - 1e-15)
    return lower, upper
