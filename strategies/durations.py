"""Durations in strategy specs: ``parse_duration`` reads "500ms", "30s", "5m", "1h30m" or a
number of seconds; ``format_duration`` writes seconds back in the same short form."""

from __future__ import annotations

import math
import re

UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
EXPECTED = "a number of seconds or a string like '500ms', '30s', '5m', '1h30m'"


def parse_duration(value: object) -> float:
    """Return ``value`` as seconds (a float >= 0).

    Numbers are seconds; strings are either a plain number of seconds ("30") or one or more
    number-and-unit parts, largest unit first ("1h30m", "1.5s", "500ms"; units ms, s, m, h, d).
    Raises ValueError naming the value and what was expected otherwise.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"invalid duration {_show(value)}: expected {EXPECTED}")
    if isinstance(value, (int, float)):
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"invalid duration {_show(value)}: must be a finite number >= 0")
        return float(value)
    text = value.strip().lower()
    if _NUMBER.fullmatch(text):
        return float(text)
    parts = _PART.findall(text)
    ranks = [list(UNITS).index(unit) for _, unit in parts]
    whole = "".join(number + unit for number, unit in parts)
    if not parts or whole != text or ranks != sorted(set(ranks), reverse=True):
        raise ValueError(f"invalid duration {_show(value)}: expected {EXPECTED}")
    return sum(float(number) * UNITS[unit] for number, unit in parts)


def format_duration(seconds: float) -> str:
    """Write ``seconds`` compactly: 0.5 -> "500ms", 90 -> "1m30s", 5400 -> "1h30m", 1.25 ->
    "1.25s". Precision is one millisecond, so ``parse_duration`` reads it back to within 1 ms."""
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        raise ValueError(f"cannot format {_show(seconds)} as a duration")
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"cannot format {_show(seconds)} as a duration: must be >= 0")
    millis = round(seconds * 1000)
    if millis == 0:
        return "0s"
    if millis < 1000:
        return f"{millis}ms"
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    out = (f"{hours}h" if hours else "") + (f"{minutes}m" if minutes else "")
    if rest:
        whole, frac = divmod(rest, 1000)
        out += f"{whole}.{frac:03d}".rstrip("0") + "s" if frac else f"{whole}s"
    return out


def _show(value: object) -> str:
    return repr(value) if isinstance(value, str) else str(value)
