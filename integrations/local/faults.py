"""The faults the sample app can be told to inject (the ``sample`` part of a local artifact)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from strategies.durations import parse_duration


@dataclass(frozen=True)
class Faults:
    error_rate: float = 0.0  # fraction of requests to / answered 500
    latency_ms: float = 0.0  # added to every request to /
    latency_jitter_ms: float = 0.0  # +/- uniformly around latency_ms
    health_fails: bool = False  # /health answers 500
    start_delay: float = 0.0  # seconds to wait before listening
    crash_after: float | None = None  # seconds after which the process exits with status 1


def _number(value: Any, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"must be a number, got {value!r}")
    if not low <= value <= high:
        raise ValueError(f"must be between {low:g} and {high:g}, got {value!r}")
    return float(value)


def parse_faults(config: Any) -> tuple[Faults, list[tuple[str, str]]]:
    """The faults in ``config``, and every error as ``(key, message)``; unknown keys are errors."""
    if config is None:
        return Faults(), []
    if not isinstance(config, dict):
        return Faults(), [("", f"must be an object, got {type(config).__name__}")]
    errors: list[tuple[str, str]] = []
    values: dict[str, Any] = {}
    for key, value in config.items():
        try:
            if key == "error_rate":
                values["error_rate"] = _number(value, 0, 1)
            elif key in ("latency_ms", "latency_jitter_ms"):
                values[key] = _number(value, 0, 600_000)
            elif key == "health":
                if value not in ("ok", "fail"):
                    raise ValueError(f"must be 'ok' or 'fail', got {value!r}")
                values["health_fails"] = value == "fail"
            elif key == "start_delay":
                values["start_delay"] = parse_duration(value)
            elif key == "crash_after":
                values["crash_after"] = parse_duration(value) if value is not None else None
            else:
                raise ValueError(
                    "is not a sample app setting (known: error_rate, latency_ms, "
                    "latency_jitter_ms, health, start_delay, crash_after)"
                )
        except ValueError as exc:
            errors.append((key, str(exc)))
    return Faults(**values), errors
