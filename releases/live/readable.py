"""An analysis measurement in the words and numbers a person reads on the deployment page.

``shown(metric, value)`` turns one stored measurement (``strategies.analysis.classify``'s dict:
each side's ``count``/``mean``/percentiles, or ``total``/``errors``/``rate`` for request counts,
the interval, the effect) into plain strings, so that the server-rendered table and the live one
(static/js/deployment.js) print the same text and neither ever prints a dict. Plain values only:
it reads nothing and imports only ``strategies``.
"""

from __future__ import annotations

from typing import Any

from strategies.analysis.classify import fmt


def _num(value: float | None, unit: str = "") -> str:
    """``fmt`` for one value; ``ratio`` units read as percentages."""
    return fmt(value, unit)


def side_text(side: dict | None, unit: str = "", *, counted: bool = False) -> str:
    """One side (baseline or canary): requests and errors for a test of counts (``counted``),
    else the distribution (count, mean, percentiles)."""
    if not side:
        return "—"
    if counted and side.get("total") is not None:
        total, errors = int(side["total"]), int(side.get("errors") or 0)
        rate = side.get("rate")
        share = f" ({_num(rate, 'ratio')})" if rate is not None else ""
        return f"{total} requests · {errors} errors{share}"
    count = side.get("count")
    if not count:
        return "no samples"
    shown_unit = "" if unit == "ratio" else unit
    parts = [f"{int(count)} samples"]
    if side.get("mean") is not None:
        parts.append(f"mean {_num(side['mean'], unit)}")
    for name in ("p50", "p95", "p99"):
        if side.get(name) is not None:
            parts.append(f"{name} {_num(side[name], shown_unit or unit)}")
    return " · ".join(parts)


def shift_text(interval: dict | None, effect: dict | None, unit: str = "") -> str:
    """The difference and its interval: the Mann-Whitney shift, or the error-rate difference."""
    effect = effect or {}
    ratio = effect.get("ratio")
    ratio_text = ""
    if effect.get("ratio_infinite"):
        ratio_text = "canary/baseline: baseline is 0"
    elif ratio is not None:
        ratio_text = f"canary/baseline {ratio:.3g}×"
    if not interval:
        return ratio_text or "—"
    confidence = interval.get("confidence")
    level = f"{confidence * 100:g}% CI" if confidence is not None else "CI"
    low, high = interval.get("lower"), interval.get("upper")
    if interval.get("of") == "shift":
        text = (
            f"shift {_num(interval.get('estimate'), unit)} "
            f"({level} {_num(low, unit)} to {_num(high, unit)})"
        )
    else:  # the sequential test's error-rate difference
        text = f"error rate difference {level} {_num(low, 'ratio')} to {_num(high, 'ratio')}"
    return f"{text}; {ratio_text}" if ratio_text else text


def evidence_text(value: dict) -> str:
    """The sequential test's evidence against its threshold ("" for the other tests)."""
    effect = value.get("effect") or {}
    if effect.get("e_value") is None or effect.get("threshold") is None:
        return ""
    e, limit = effect["e_value"], effect["threshold"]
    word = ">=" if e >= limit else "<"
    return f"evidence {e:.3g} {word} {limit:g}"


def statistic_text(value: dict, unit: str = "") -> str:
    """The threshold test's statistic on each side ("canary p95 41 ms · baseline 28 ms")."""
    looked = value.get("value") or {}
    name = looked.get("statistic")
    if value.get("test") != "threshold" or not name:
        return ""
    text = f"canary {name} {_num(looked.get('canary'), unit)}"
    if looked.get("baseline") is not None:
        text += f" · baseline {_num(looked.get('baseline'), unit)}"
    return text


def shown(metric: dict[str, Any], value: dict[str, Any] | None) -> dict[str, str]:
    """Every string the analysis table shows for ``metric``'s last measurement ``value``."""
    unit = metric.get("unit", "")
    counted = metric.get("test") == "sequential"
    if not value:
        return {"baseline": "—", "canary": "—", "shift": "", "evidence": "", "statistic": ""}
    if value.get("phase") == "error":
        return {"baseline": "—", "canary": "—", "shift": "", "evidence": "", "statistic": ""}
    return {
        "baseline": side_text(value.get("baseline"), unit, counted=counted),
        "canary": side_text(value.get("canary"), unit, counted=counted),
        "shift": shift_text(value.get("interval"), value.get("effect"), unit),
        "evidence": evidence_text(value),
        "statistic": statistic_text(value, unit),
    }
