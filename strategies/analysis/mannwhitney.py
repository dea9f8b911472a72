"""The Mann-Whitney U test (Wilcoxon rank-sum), the Hodges-Lehmann shift estimate and its
confidence interval -- as R's ``wilcox.test(x, y, conf.int=TRUE, exact=FALSE, correct=TRUE)``
computes them, which is what Kayenta's NetflixACAJudge calls.

``x`` is the canary (experiment), ``y`` the baseline (control); the shift is ``x - y`` (positive:
the canary is higher). Observations come as ``(value, weight)`` pairs, so a latency histogram of
100,000 requests costs as much as its dozen buckets.

- ``u``: the U statistic of ``x`` (pairs where x > y, ties counting 1/2), as
  ``scipy.stats.mannwhitneyu(x, y).statistic``;
- ``p_value``: two-sided, normal approximation with tie and continuity corrections (scipy's
  ``method="asymptotic"``);
- ``estimate``: the Hodges-Lehmann estimate, the median of the n*m differences x_i - y_j;
- ``lower``/``upper``: the two-sided confidence interval of the shift, by inverting the same test:
  the shifts d for which the test of (x - d, y) does not reject at 1 - confidence. The
  standardised statistic is a step function of d that jumps at the pairwise differences, so the
  bounds are pairwise differences and are found exactly (R finds the same points with uniroot).

Samples with more than ``MAX_DISTINCT`` distinct values each are first binned to that many
equal-weight bins (each bin at its weighted mean), which only merges near-ties.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from statistics import NormalDist

MAX_DISTINCT = 500
_NORMAL = NormalDist()


@dataclass(frozen=True)
class MannWhitney:
    n_x: float
    n_y: float
    u: float
    z: float
    p_value: float
    estimate: float
    lower: float
    upper: float
    confidence: float


def compress(pairs: Iterable[tuple[float, float]]) -> list[tuple[float, float]]:
    """Equal values merged, sorted by value; weights <= 0 dropped."""
    merged: dict[float, float] = defaultdict(float)
    for value, weight in pairs:
        if weight > 0:
            merged[value] += weight
    return sorted(merged.items())


def bin_values(pairs: list[tuple[float, float]], bins: int = MAX_DISTINCT) -> list:
    """At most ``bins`` values: consecutive equal-weight groups, each at its weighted mean."""
    if len(pairs) <= bins:
        return pairs
    total = sum(w for _, w in pairs)
    size = total / bins
    out, acc_v, acc_w, edge = [], 0.0, 0.0, size
    seen = 0.0
    for value, weight in pairs:
        acc_v += value * weight
        acc_w += weight
        seen += weight
        if seen >= edge:
            out.append((acc_v / acc_w, acc_w))
            acc_v = acc_w = 0.0
            while edge <= seen:
                edge += size
    if acc_w > 0:
        out.append((acc_v / acc_w, acc_w))
    return compress(out)


def _ties(*samples: list[tuple[float, float]]) -> float:
    return sum(w**3 - w for sample in samples for _, w in sample)


def _sigma(n_x: float, n_y: float, ties: float) -> float:
    n = n_x + n_y
    if n < 2:
        return 0.0
    variance = (n_x * n_y / 12) * ((n + 1) - ties / (n * (n - 1)))
    return math.sqrt(max(variance, 0.0))


def _corrected(t: float) -> float:
    """The continuity correction: |t| reduced by 1/2 (R's ``sign(z) * 0.5``)."""
    return t - math.copysign(0.5, t) if t else 0.0


def mann_whitney(
    x: Iterable[tuple[float, float]],
    y: Iterable[tuple[float, float]],
    confidence: float = 0.98,
) -> MannWhitney:
    """The test of ``x`` against ``y`` (both non-empty, no NaN: clean them first)."""
    xs, ys = bin_values(compress(x)), bin_values(compress(y))
    if not xs or not ys:
        raise ValueError("the Mann-Whitney test needs observations in both samples")
    n_x, n_y = sum(w for _, w in xs), sum(w for _, w in ys)
    total = n_x * n_y

    diffs: dict[float, float] = defaultdict(float)
    for vx, wx in xs:
        for vy, wy in ys:
            diffs[vx - vy] += wx * wy
    points = sorted(diffs.items())
    values = [d for d, _ in points]

    # U and the p-value at shift 0 (ties pooled across both samples)
    above = sum(w for d, w in points if d > 0)
    tied = diffs.get(0.0, 0.0)
    u = above + tied / 2
    pooled: dict[float, float] = defaultdict(float)
    for value, weight in (*xs, *ys):
        pooled[value] += weight
    sigma = _sigma(n_x, n_y, _ties(list(pooled.items())))
    if sigma > 0:
        z = _corrected(u - total / 2) / sigma
        p_value = min(1.0, 2 * (1 - _NORMAL.cdf(abs(z))))
    else:
        z, p_value = 0.0, 1.0

    # Hodges-Lehmann: the median of the differences
    estimate = _weighted_median(points, total)

    # the interval: between jumps the statistic counts the differences above d; only the ties
    # within each sample remain (no x - d equals a y there)
    sigma_between = _sigma(n_x, n_y, _ties(xs, ys))
    alpha = 1 - confidence
    zq = _NORMAL.inv_cdf(1 - alpha / 2)
    remaining = [0.0] * len(points)  # weight of the differences above d for d just above D_k
    running = 0.0
    for k in range(len(points) - 1, -1, -1):
        remaining[k] = running
        running += points[k][1]

    def standardised(count_above: float) -> float:
        if sigma_between == 0:
            return 0.0
        return _corrected(count_above - total / 2) / sigma_between

    lower = values[0]
    if standardised(total) > zq:  # below every difference the test rejects: find the crossing
        lower = next(
            (values[k] for k in range(len(points)) if standardised(remaining[k]) <= zq),
            values[-1],
        )
    upper = next(
        (values[k] for k in range(len(points)) if standardised(remaining[k]) < -zq),
        values[-1],
    )
    return MannWhitney(n_x, n_y, u, z, p_value, estimate, lower, upper, confidence)


def _weighted_median(points: list[tuple[float, float]], total: float) -> float:
    half = total / 2
    seen = 0.0
    for index, (value, weight) in enumerate(points):
        seen += weight
        if seen > half:
            return value
        if seen == half:  # an even count split exactly here: the mean of the two middle values
            return (value + points[index + 1][0]) / 2 if index + 1 < len(points) else value
    return points[-1][0]
