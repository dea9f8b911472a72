"""Reading the fields of a strategy spec while collecting every error, not just the first.

Holds the error types (``FieldError``, ``SpecError``), ``Fields`` (a reader over one JSON object
that records unknown keys and bad values by path) and the value converters the spec kinds use
(whole numbers, counts or percentages, durations, URL paths).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from strategies.durations import parse_duration

PERCENT = re.compile(r"(\d+)%")


@dataclass(frozen=True)
class FieldError:
    """One problem with one field: ``path`` like "health.interval", "" for the spec itself."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path or 'spec'}: {self.message}"


class SpecError(Exception):
    """A spec failed validation; ``errors`` lists every problem found."""

    def __init__(self, errors: list[FieldError]):
        self.errors = list(errors)
        super().__init__(str(self))

    def __str__(self) -> str:
        count = len(self.errors)
        head = f"invalid strategy spec ({count} error{'' if count == 1 else 's'})"
        return head + ": " + "; ".join(str(error) for error in self.errors)

    def as_dicts(self) -> list[dict[str, str]]:
        """The errors as ``[{"path": ..., "message": ...}]`` (the API's ``details.errors``)."""
        return [asdict(error) for error in self.errors]


def show(value: Any) -> str:
    """A value as a person reads it in an error message: 'text', 2.5, true, null."""
    if isinstance(value, str):
        return repr(value)
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)


class Fields:
    """Reads the keys of one JSON object at ``prefix``, adding a FieldError per problem."""

    def __init__(self, raw: dict, prefix: str, errors: list[FieldError]):
        self.raw = raw
        self.prefix = prefix
        self.errors = errors
        self.seen: set[str] = set()

    def path(self, key: str) -> str:
        return f"{self.prefix}.{key}" if self.prefix else str(key)

    def error(self, key: str, message: str) -> None:
        self.errors.append(FieldError(self.path(key), message))

    def take(self, key: str, default: Any, convert: Callable[[Any], Any]) -> Any:
        """The converted value of ``key`` (``default`` if absent); None after recording an error."""
        self.seen.add(key)
        if key not in self.raw:
            return default
        try:
            return convert(self.raw[key])
        except ValueError as exc:
            self.error(key, str(exc))
            return None

    def nested(self, key: str) -> Fields | None:
        """A reader for the object under ``key`` ({} if absent); None after recording an error."""
        self.seen.add(key)
        value = self.raw.get(key, {})
        if not isinstance(value, dict):
            self.error(key, f"must be an object, got {show(value)}")
            return None
        return Fields(value, self.path(key), self.errors)

    def finish(self) -> None:
        """Record every key that was never read as unknown."""
        for key in self.raw:
            if key not in self.seen:
                self.error(key, f"unknown key {show(key)}")


def whole(minimum: int) -> Callable[[Any], int]:
    """Converter: a whole number >= ``minimum`` (2.0 counts as 2)."""

    def convert(value: Any) -> int:
        number = _as_int(value)
        if number is None or number < minimum:
            raise ValueError(f"must be a whole number >= {minimum}, got {show(value)}")
        return number

    return convert


def count_or_percent(minimum: int) -> Callable[[Any], int | str]:
    """Converter: a whole number >= ``minimum`` or a percentage "0%".."100%" (kept as text)."""

    def convert(value: Any) -> int | str:
        number = _as_int(value)
        if number is not None and number >= minimum:
            return number
        match = PERCENT.fullmatch(value.strip()) if isinstance(value, str) else None
        if match is None:
            raise ValueError(
                f"must be a whole number >= {minimum} or a percentage like '25%', got {show(value)}"
            )
        if int(match.group(1)) > 100:
            raise ValueError(f"must be between 0% and 100%, got {show(value)}")
        return f"{int(match.group(1))}%"

    return convert


def duration(*, positive: bool) -> Callable[[Any], float]:
    """Converter: a duration in seconds (see ``parse_duration``), > 0 if ``positive``."""

    def convert(value: Any) -> float:
        seconds = parse_duration(value)
        if positive and seconds <= 0:
            raise ValueError(f"must be a duration > 0, got {show(value)}")
        return seconds

    return convert


def url_path(value: Any) -> str:
    """Converter: a URL path starting with "/"."""
    if not isinstance(value, str) or not value.startswith("/") or any(c.isspace() for c in value):
        raise ValueError(f"must be a URL path starting with '/', got {show(value)}")
    return value


def resolve(value: int | str, replicas: int, *, round_up: bool) -> int:
    """A count, or a percentage of ``replicas`` rounded up or down, as a whole number."""
    if isinstance(value, int):
        return value
    share = int(value.rstrip("%")) * replicas
    return -(-share // 100) if round_up else share // 100


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None
