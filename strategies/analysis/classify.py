"""One measurement of one metric: baseline and canary samples in, a result that explains itself.

``measure(metric, baseline, canary, previous)`` returns a plain dict (stored as the Measurement's
value, served by the API, shown on the deployment page):

    {"test": "mann_whitney" | "sequential" | "quantile" | "threshold",
     "phase": "successful" | "failed" | "inconclusive",
     "classification": "pass" | "high" | "low" | "nodata" | "neither" | "undecided",
     "insufficient": bool,           # below min_samples: waiting for data (not a verdict)
     "undecided": bool,              # neither shown within the margin nor worse: keep looking
     "baseline": {"count", "mean", "p50", "p95", "p99", ...}, "canary": {...},
     "value": {"baseline": x, "canary": y},            # the statistic the test looked at
     "interval": {"lower", "upper", "confidence", "of": "shift" | ...} | None,
     "effect": {"ratio": canary/baseline mean, "difference": ..., ...},
     "critical": bool, "why": "one sentence", "state": {...} (the sequential test's)}
"""

from __future__ import annotations

import math
from typing import Any

from strategies.analysis import expr
from strategies.analysis.mannwhitney import mann_whitney
from strategies.analysis.quantile import QuantileState
from strategies.analysis.sequential import SequentialState, rate_interval
from strategies.analysis.series import Series


def measure(
    metric: dict[str, Any],
    baseline: Series | dict,
    canary: Series | dict,
    previous: dict[str, Any] | None = None,
) -> dict[str, Any]:
    baseline, canary = Series.from_dict(baseline), Series.from_dict(canary)
    test = metric["test"]
    if test == "sequential":
        result = _sequential(metric, baseline, canary, previous)
    elif test == "quantile":
        result = _quantile(metric, baseline, canary, previous)
    elif test == "mann_whitney":
        result = _mann_whitney(metric, baseline, canary)
    else:
        result = _threshold(metric, baseline, canary)
    result.setdefault("baseline", baseline.describe())
    result.setdefault("canary", canary.describe())
    result.setdefault("interval", None)
    result.setdefault("effect", {})
    result.setdefault("insufficient", False)
    result.setdefault("undecided", False)
    return {"test": test, "critical": metric["critical"], **result}


def error_result(metric: dict[str, Any], message: str, *, permanent: bool = False) -> dict:
    """A measurement the provider could not take."""
    return {
        "test": metric["test"],
        "critical": metric["critical"],
        "phase": "error",
        "classification": "error",
        "insufficient": False,
        "permanent": permanent,
        "baseline": None,
        "canary": None,
        "interval": None,
        "effect": {},
        "why": message,
    }


# --- helpers ----------------------------------------------------------------------------------


def fmt(value: float | None, unit: str = "") -> str:
    """A number as a person reads it: 3 significant digits, percentages for ratios."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if math.isinf(value):
        return "infinite" if value > 0 else "-infinite"
    if unit == "ratio":
        return f"{value * 100:.3g}%"
    text = f"{value:.3g}"
    return f"{text} {unit}".strip() if unit and unit != "ratio" else text


def _samples(series: Series, metric: dict) -> float:
    """How many observations count toward ``min_samples``: requests when counted."""
    if metric["test"] == "quantile":
        return series.count
    if series.total is not None and metric["test"] == "sequential":
        return series.total
    return series.count


def _insufficient(metric: dict, need: dict[str, Series]) -> dict | None:
    """An inconclusive result when an arm is below ``min_samples`` (no data is never a verdict)."""
    minimum = metric["min_samples"]
    short = {name: _samples(s, metric) for name, s in need.items() if _samples(s, metric) < minimum}
    if not short:
        return None
    seen = ", ".join(f"{name} {int(n)}" for name, n in short.items())
    return {
        "phase": "inconclusive",
        "classification": "nodata",
        "insufficient": True,
        "why": f"Not enough data yet: {seen} of the {minimum} "
        f"{'samples' if metric['test'] in ('mann_whitney', 'threshold') else 'requests'} "
        "needed per side.",
    }


def statistic(series: Series, name: str) -> float | None:
    if name == "rate":
        return (series.errors or 0) / series.total if series.total else None
    if name == "mean":
        return series.mean()
    if name in ("p50", "p95", "p99"):
        return series.quantile(int(name[1:]) / 100)
    values = [v for v, _ in series.pairs()]
    if name == "last":
        return values[-1] if values else None
    if name == "sum":
        return sum(v * w for v, w in series.pairs()) if values else None
    if name == "count":
        return series.count
    raise ValueError(f"unknown statistic {name!r}")


def _ratio(canary: float | None, baseline: float | None) -> float | None:
    if canary is None or baseline is None:
        return None
    if baseline == 0:
        return 1.0 if canary == 0 else math.inf * (1 if canary > 0 else -1)
    return canary / baseline


def _clean(number: float | None) -> float | None:
    """JSON-safe: NaN -> None, infinities kept as very large numbers are not: -> None too."""
    if number is None or not math.isfinite(number):
        return None
    return round(number, 9)


def _effect(canary: float | None, baseline: float | None) -> dict:
    ratio = _ratio(canary, baseline)
    difference = None if canary is None or baseline is None else canary - baseline
    return {
        "ratio": _clean(ratio),
        "ratio_infinite": ratio is not None and math.isinf(ratio),
        "difference": _clean(difference),
    }


# --- the three tests ----------------------------------------------------------------------------


def _threshold(metric: dict, baseline: Series, canary: Series) -> dict:
    conditions = [metric.get("success_condition"), metric.get("failure_condition")]
    uses_baseline = any(
        c and any(n in c for n in ("baseline", "ratio", "difference")) for c in conditions
    )
    need = {"canary": canary, **({"baseline": baseline} if uses_baseline else {})}
    waiting = _insufficient(metric, need)
    b, c = statistic(baseline, metric["statistic"]), statistic(canary, metric["statistic"])
    value = {"baseline": _clean(b), "canary": _clean(c), "statistic": metric["statistic"]}
    if waiting:
        return {**waiting, "value": value, "effect": _effect(c, b)}
    names = expr.variables(c, b)
    success, failure = metric.get("success_condition"), metric.get("failure_condition")
    unit = metric.get("unit", "")
    shown = f"canary {metric['statistic']} {fmt(c, unit)}"
    if uses_baseline:
        shown += f" vs baseline {fmt(b, unit)}"
    if failure and expr.evaluate(failure, names):
        phase, label, why = "failed", "fail", f"{shown} meets the failure condition `{failure}`."
    elif success and expr.evaluate(success, names):
        phase, label, why = "successful", "pass", f"{shown} meets `{success}`."
    elif success and failure:
        phase, label = "inconclusive", "neither"
        why = f"{shown} meets neither `{success}` nor `{failure}`: a person should decide."
    elif success:
        phase, label, why = "failed", "fail", f"{shown} does not meet `{success}`."
    else:
        phase, label, why = "successful", "pass", f"{shown} stays clear of `{failure}`."
    return {
        "phase": phase,
        "classification": label,
        "why": why,
        "value": value,
        "effect": _effect(c, b),
    }


def _mann_whitney(metric: dict, baseline: Series, canary: Series) -> dict:
    nan = metric.get("nan_strategy", "remove")
    baseline, canary = baseline.without_nan(nan), canary.without_nan(nan)
    if metric.get("outliers") == "remove":
        baseline, canary = baseline.without_outliers(), canary.without_outliers()
    described = {"baseline": baseline.describe(), "canary": canary.describe()}
    waiting = _insufficient(metric, {"canary": canary, "baseline": baseline})
    if waiting:
        return {**waiting, **described}
    unit = metric.get("unit", "")
    direction = metric["direction"]
    b_mean, c_mean = baseline.mean(), canary.mean()
    effect = _effect(c_mean, b_mean)
    ratio = _ratio(c_mean, b_mean)
    b_pairs, c_pairs = baseline.pairs(), canary.pairs()

    def result(label: str, why: str, interval: dict | None = None) -> dict:
        failed = label in ("high", "low")
        return {
            "phase": "failed" if failed else "successful",
            "classification": label,
            "why": why,
            "interval": interval,
            "effect": effect,
            "value": {"baseline": _clean(b_mean), "canary": _clean(c_mean), "statistic": "mean"},
            **described,
        }

    if sorted(b_pairs) == sorted(c_pairs):
        return result("pass", "The canary's and the baseline's data are identical.")
    if direction in ("increase", "either") and all(v == 0 for v, _ in b_pairs):
        if any(v > 0 for v, _ in c_pairs):
            return result(
                "high",
                f"The baseline was 0 throughout ({int(baseline.count)} samples) and the canary "
                f"was not (mean {fmt(c_mean, unit)}): a zero baseline does not excuse the canary.",
            )
    if len({v for v, _ in b_pairs} | {v for v, _ in c_pairs}) == 1:
        return result("pass", "Every sample of both sides has the same value.")

    mw = mann_whitney(c_pairs, b_pairs, metric["confidence"])
    bound = metric["tolerance"] * abs(mw.estimate)
    interval = {
        "of": "shift",
        "lower": _clean(mw.lower),
        "upper": _clean(mw.upper),
        "confidence": metric["confidence"],
        "estimate": _clean(mw.estimate),
        "tolerance": _clean(bound),
        "p_value": _clean(mw.p_value),
        "u": _clean(mw.u),
    }
    pct = f"{metric['confidence'] * 100:g}%"
    shift = (
        f"shift {fmt(mw.estimate, unit)} ({pct} CI {fmt(mw.lower, unit)} to "
        f"{fmt(mw.upper, unit)}), mean ratio {fmt(ratio)}"
    )
    higher = direction in ("increase", "either") and mw.lower > bound
    lower = direction in ("decrease", "either") and mw.upper < -bound
    if higher and ratio is not None and ratio >= metric["allowed_increase"]:
        return result(
            "high",
            f"The canary is higher: {shift} >= the allowed {metric['allowed_increase']:g}.",
            interval,
        )
    if lower and ratio is not None and ratio <= metric["allowed_decrease"]:
        return result(
            "low",
            f"The canary is lower: {shift} <= the allowed {metric['allowed_decrease']:g}.",
            interval,
        )
    if higher or lower:
        allowed = metric["allowed_increase"] if higher else metric["allowed_decrease"]
        why = f"The canary differs but within the allowed effect: {shift} (allowed {allowed:g})."
    else:
        why = f"No clear difference: {shift}; the interval does not clear ±{fmt(bound, unit)}."
    return result("pass", why, interval)


def _margin_text(metric: dict) -> str:
    size = f"{metric['margin'] * 100:.3g}"
    points = f"{size} point{'' if size == '1' else 's'}"
    if (metric.get("margin_ratio") or 1) > 1:
        return f"{points} or {metric['margin_ratio']:g}x the baseline's rate, whichever is larger"
    return points


def _undecided(why: str, common: dict) -> dict:
    return {
        "phase": "inconclusive",
        "classification": "undecided",
        "undecided": True,
        "why": why,
        **common,
    }


def _sequential(metric: dict, baseline: Series, canary: Series, previous: dict | None) -> dict:
    """Fail: the always-valid evidence that the canary fails more often reaches 1/alpha, and
    the rates seen put it beyond the margin. Pass: the always-valid (``confidence``) bounds
    rule out a difference (or ratio) larger than the margin. Otherwise undecided."""
    state = SequentialState.from_dict((previous or {}).get("state"))
    c_total, c_errors = canary.total or 0, canary.errors or 0
    b_total, b_errors = baseline.total or 0, baseline.errors or 0
    state = state.advance(
        c_total,
        c_errors,
        b_total,
        b_errors,
        null_ratio=metric["null_ratio"],
        margin_ratio=metric.get("margin_ratio"),
    )
    alpha = metric["alpha"]
    pass_alpha = 1 - metric["confidence"]
    margin, margin_ratio = metric.get("margin") or 0.0, metric.get("margin_ratio")
    c_rate = c_errors / c_total if c_total else None
    b_rate = b_errors / b_total if b_total else None
    c_ci = rate_interval(c_errors, c_total, pass_alpha / 2)
    b_ci = rate_interval(b_errors, b_total, pass_alpha / 2)
    interval = None
    bound = None  # the largest regression the data still allow
    if c_ci and b_ci:
        bound = c_ci[1] - b_ci[0]
        interval = {
            "of": "error rate difference",
            "lower": _clean(c_ci[0] - b_ci[1]),
            "upper": _clean(bound),
            "confidence": metric["confidence"],
            "canary": [_clean(c_ci[0]), _clean(c_ci[1])],
            "baseline": [_clean(b_ci[0]), _clean(b_ci[1])],
            "always_valid": True,
            "margin": margin,
            "margin_ratio": margin_ratio,
        }
    e_value = state.e_value
    effect = {
        **_effect(c_rate, b_rate),
        "e_value": _clean(e_value) if math.isfinite(e_value) else 1e300,
        "threshold": 1 / alpha,
        "pass_value": _clean(state.pass_value) if math.isfinite(state.pass_value) else 1e300,
    }
    value = {"baseline": _clean(b_rate), "canary": _clean(c_rate), "statistic": "rate"}
    rates = (
        f"canary {fmt(c_rate, 'ratio')} errors ({c_errors}/{c_total}) vs baseline "
        f"{fmt(b_rate, 'ratio')} ({b_errors}/{b_total})"
    )
    common = {"value": value, "interval": interval, "effect": effect, "state": state.to_dict()}
    beyond = c_rate is not None and b_rate is not None and c_rate - b_rate > margin
    if beyond and margin_ratio:
        beyond = c_rate > margin_ratio * b_rate
    margin_text = _margin_text(metric)
    if state.rejects(alpha) and beyond:
        return {
            "phase": "failed",
            "classification": "high",
            "why": f"The canary is clearly worse: {rates}; evidence {e_value:.3g} >= "
            f"{1 / alpha:g}, beyond the margin of {margin_text}.",
            **common,
        }
    waiting = _insufficient(metric, {"canary": canary, "baseline": baseline})
    if waiting:
        return {**waiting, **common}
    pct = f"{metric['confidence'] * 100:g}%"
    allowed = f"difference <= {fmt(bound, 'ratio')}" if bound is not None else "n/a"
    within = bound is not None and bound < margin
    if margin_ratio and state.pass_value >= 1 / pass_alpha:
        within = True
        allowed = (
            f"odds ratio < {margin_ratio:g} (evidence {state.pass_value:.3g} >= "
            f"{1 / pass_alpha:.3g})"
        )
    # once shown within the margin, it stays shown: the first crossing of an always-valid
    # bound is a valid verdict whenever it is read (until the failure test says otherwise)
    if not within and (previous or {}).get("classification") == "pass":
        within, allowed = True, "shown earlier in this window"
    if within:
        return {
            "phase": "successful",
            "classification": "pass",
            "why": f"Within the margin: {rates}; at {pct} (always valid) {allowed}, "
            f"below the margin of {margin_text}.",
            **common,
        }
    if state.rejects(alpha):
        why = (
            f"Not decided: the canary fails more often ({rates}; evidence {e_value:.3g}), "
            f"but not yet beyond the margin of {margin_text}."
        )
    else:
        why = (
            f"Not decided yet: {rates}; at {pct} {allowed}, not yet below the margin of "
            f"{margin_text}; evidence of harm {e_value:.3g} < {1 / alpha:g}."
        )
    return _undecided(why, common)


def _quantile(metric: dict, baseline: Series, canary: Series, previous: dict | None) -> dict:
    """The sequential latency test (``strategies.analysis.quantile``): fail when the always-valid
    evidence that canary requests are slower reaches 1/alpha and the canary's ``percentile`` in
    the window is beyond (1 + margin) times the baseline's; pass when the data rule out a shift
    of ``percentile`` larger than the margin."""
    nan = metric.get("nan_strategy", "remove")
    baseline, canary = baseline.without_nan(nan), canary.without_nan(nan)
    state = QuantileState.from_dict((previous or {}).get("state"))
    state = state.advance(
        canary,
        baseline,
        percentile=metric["percentile"],
        margin=metric["margin"],
        null_ratio=metric["null_ratio"],
        min_samples=metric["min_samples"],
    )
    alpha, unit = metric["alpha"], metric.get("unit", "")
    q = f"p{metric['percentile'] * 100:g}"
    pct = f"{metric['confidence'] * 100:g}%"
    e_value = state.e_value
    within, intervals = state.within_margin(1 - metric["confidence"])
    shares = state.shares()
    effect = {
        **_effect(canary.quantile(metric["percentile"]), baseline.quantile(metric["percentile"])),
        "e_value": _clean(e_value) if math.isfinite(e_value) else 1e300,
        "threshold": 1 / alpha,
        "pass_value": _clean(state.pass_value) if math.isfinite(state.pass_value) else 1e300,
        "thresholds": list(state.thresholds),
        "reference": _clean(state.reference),
        "limit": _clean(state.limit),
        **shares,
    }
    interval = None
    if intervals:
        interval = {
            "of": f"share slower than the limit ({q} x {1 + metric['margin']:g})",
            "canary": [_clean(intervals["canary"][0]), _clean(intervals["canary"][1])],
            "baseline": [_clean(intervals["baseline"][0]), _clean(intervals["baseline"][1])],
            "lower": _clean(intervals["canary"][0] - intervals["baseline"][1]),
            "upper": _clean(intervals["canary"][1] - intervals["baseline"][0]),
            "confidence": metric["confidence"],
            "always_valid": True,
            "margin": metric["margin"],
        }
    value = {
        "baseline": _clean(baseline.quantile(metric["percentile"])),
        "canary": _clean(canary.quantile(metric["percentile"])),
        "statistic": q,
    }
    common = {"value": value, "interval": interval, "effect": effect, "state": state.to_dict()}
    width = state.width
    limit_note = ""
    if state.started and state.coarse():
        limit_note = (
            f" The buckets are coarse here: around the baseline's {q} "
            f"({fmt(state.reference, unit)}) they are {width:.0%} wide, wider than the margin of "
            f"{metric['margin']:.0%}: this test cannot show the canary within it."
        )
    common["resolution"] = {"relative_width": _clean(width), "coarse": state.coarse()}
    waiting = _insufficient(metric, {"canary": canary, "baseline": baseline})
    tail = (
        f"canary {q} {fmt(value['canary'], unit)} vs baseline {fmt(value['baseline'], unit)}; "
        f"slower than {fmt(state.limit, unit)}: canary {shares['canary_slow']}/"
        f"{shares['canary_total']}, baseline slower than {fmt(state.reference, unit)}: "
        f"{shares['baseline_slow']}/{shares['baseline_total']}"
    )
    c_q, b_q = canary.quantile(metric["percentile"]), baseline.quantile(metric["percentile"])
    beyond = c_q is not None and b_q is not None and c_q > (1 + metric["margin"]) * b_q
    if state.rejects(alpha) and beyond:
        return {
            "phase": "failed",
            "classification": "high",
            "why": f"The canary is clearly slower: {tail}; evidence {e_value:.3g} >= "
            f"{1 / alpha:g}, beyond the margin of {metric['margin']:.0%} at {q}." + limit_note,
            **common,
        }
    if waiting or not state.started or shares["canary_total"] < metric["min_samples"]:
        if not waiting and not state.started:
            needed = max(metric["min_samples"], 10 / (1 - metric["percentile"]))
            why = (
                f"Not enough data yet: baseline {int(baseline.count)} of the {needed:.0f} "
                f"requests needed to place its {q}."
            )
        else:
            why = (
                f"Not enough data yet: canary {shares['canary_total']} of the "
                f"{metric['min_samples']} requests needed since the thresholds were fixed."
            )
        waiting = waiting or {
            "phase": "inconclusive",
            "classification": "nodata",
            "insufficient": True,
            "why": why,
        }
        return {**waiting, **common, "why": waiting["why"] + limit_note}
    # once shown within the margin, it stays shown: the first crossing of an always-valid
    # bound is a valid verdict whenever it is read (until the failure test says otherwise)
    earlier = not within and (previous or {}).get("classification") == "pass"
    if within or earlier:
        shown = "reached earlier in this window" if earlier else f"{state.pass_value:.3g}"
        return {
            "phase": "successful",
            "classification": "pass",
            "why": f"Within the margin: {tail}; at {pct} (always valid: evidence "
            f"{shown} >= {1 / (1 - metric['confidence']):.3g}) the canary's share "
            f"is below the baseline's, so its {q} is at most {1 + metric['margin']:g}x the "
            "baseline's.",
            **common,
        }
    what = "slower" if state.rejects(alpha) else "not yet shown within the margin"
    return _undecided(
        f"Not decided: the canary is {what} ({tail}; evidence {e_value:.3g}), not beyond the "
        f"margin of {metric['margin']:.0%} at {q} either." + limit_note,
        common,
    )
