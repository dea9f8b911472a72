"""Constraints: ``{"contextName", "operator", "values" | "value", "inverted", "caseInsensitive"}``.

Semantics follow Unleash's engine (Yggdrasil) exactly, including its corners:

- a missing context value fails every operator except NOT_IN (which it passes), and
  ``inverted`` then flips that result too;
- ``caseInsensitive`` applies to the STR_* operators only (IN / NOT_IN stay exact);
- a context value that does not parse as a number / date / semver fails the constraint;
- NUM_EQ is equality within float epsilon; semver order ignores build metadata;
- ``currentTime`` defaults to now when the context has none.

:func:`problems` lists what is wrong with a constraint so that nothing served can fail to
compile in an SDK (where a broken constraint would turn the whole flag off).
"""

from __future__ import annotations

import re
import sys
from datetime import UTC, datetime

import semver

STRING_LIST = ("IN", "NOT_IN")
STRING_OPS = ("STR_CONTAINS", "STR_STARTS_WITH", "STR_ENDS_WITH")
NUMERIC_OPS = ("NUM_EQ", "NUM_GT", "NUM_GTE", "NUM_LT", "NUM_LTE")
DATE_OPS = ("DATE_AFTER", "DATE_BEFORE")
SEMVER_OPS = ("SEMVER_EQ", "SEMVER_GT", "SEMVER_LT")
OPERATORS = STRING_LIST + STRING_OPS + NUMERIC_OPS + DATE_OPS + SEMVER_OPS

# context fields with a place of their own; any other name is a custom property
FIELDS = {
    "userId": "userId",
    "sessionId": "sessionId",
    "environment": "environment",
    "appName": "appName",
    "remoteAddress": "remoteAddress",
    "currentTime": "currentTime",
}
EPSILON = sys.float_info.epsilon

# what Rust's f64 parser accepts (Python's float() also takes spaces and underscores)
_CONTEXT_NUMBER = re.compile(
    r"^[+-]?(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?|inf|infinity|nan)$",
    re.IGNORECASE,
)
# what a constraint's own number may look like (the SDK grammar's numeric literal)
_VALUE_NUMBER = re.compile(r"^-?\d+(?:\.\d+)?$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})$")


def context_value(context: dict, name: str) -> str | None:
    if name in FIELDS:
        value = context.get(name)
        if value is None and name == "currentTime":
            return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return value
    props = context.get("properties") or {}
    return props.get(name)


def parse_number(text: str) -> float | None:
    if not _CONTEXT_NUMBER.match(text):
        return None
    return float(text)


def parse_date(text: str) -> datetime | None:
    if not _DATE.match(text):
        return None
    text = text.replace("t", "T").replace(" ", "T")
    if text[-1] in "Zz":
        text = text[:-1] + "+00:00"
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def _identifier_key(part: str):
    # numeric identifiers sort before alphanumeric ones, numerically among themselves
    return (0, int(part), "") if part.isdigit() else (1, 0, part)


def semver_key(text: str):
    """An order key for a SemVer 2.0 string (None if it is not one): pre-releases before the
    release; build metadata does not count (as in Unleash's engine)."""
    try:
        v = semver.Version.parse(text)
    except (ValueError, TypeError):
        return None
    pre = v.prerelease.split(".") if v.prerelease else []
    pre_key = (1,) if not pre else (0, *(_identifier_key(p) for p in pre))
    return (v.major, v.minor, v.patch, pre_key)


def _ordinal(op: str, left, right) -> bool:
    if op.endswith("_EQ"):
        return left == right
    if op.endswith("_GTE"):
        return left >= right
    if op.endswith("_LTE"):
        return left <= right
    if op.endswith("_GT") or op == "DATE_AFTER":
        return left > right
    return left < right  # _LT, DATE_BEFORE


def _matches(c: dict, context: dict) -> bool:
    op = c["operator"]
    value = context_value(context, c["contextName"])
    if op in STRING_LIST:
        if value is None:
            return op == "NOT_IN"
        found = value in c.get("values", ())
        return found if op == "IN" else not found
    if value is None:
        return False
    if op in STRING_OPS:
        items = c.get("values", ())
        if c.get("caseInsensitive"):
            value, items = value.lower(), [i.lower() for i in items]
        if op == "STR_CONTAINS":
            return any(i in value for i in items)
        if op == "STR_STARTS_WITH":
            return any(value.startswith(i) for i in items)
        return any(value.endswith(i) for i in items)
    if op in NUMERIC_OPS:
        number = parse_number(value)
        if number is None:
            return False
        target = float(c["value"])
        if op == "NUM_EQ":
            return abs(number - target) < EPSILON
        return _ordinal(op, number, target)
    if op in DATE_OPS:
        when = parse_date(value)
        return when is not None and _ordinal(op, when, parse_date(c["value"]))
    if op in SEMVER_OPS:
        key = semver_key(value)
        return key is not None and _ordinal(op, key, semver_key(c["value"]))
    return False  # an unknown operator never matches (as in the SDKs)


def matches(c: dict, context: dict) -> bool:
    """Whether the context satisfies constraint ``c``."""
    if c["operator"] not in OPERATORS:
        return False
    result = _matches(c, context)
    return not result if c.get("inverted") else result


# --- validation -------------------------------------------------------------------------------


def problems(c, path: str = "") -> list[tuple[str, str]]:
    """``[(path, message)]`` for a constraint that could not be served as it is."""
    at = (lambda k: f"{path}.{k}") if path else (lambda k: k)
    if not isinstance(c, dict):
        return [(path, "must be an object")]
    found = []
    allowed = {"contextName", "operator", "values", "value", "inverted", "caseInsensitive"}
    for key in sorted(set(c) - allowed):
        found.append((at(key), f"unknown key {key!r}"))
    name, op = c.get("contextName"), c.get("operator")
    if not isinstance(name, str) or not re.match(r"^[A-Za-z_][A-Za-z0-9_.-]{0,99}$", name):
        found.append((at("contextName"), "must be a context field name (letters, digits, _ . -)"))
    if op not in OPERATORS:
        found.append((at("operator"), f"must be one of {', '.join(OPERATORS)}"))
        return found
    for flag in ("inverted", "caseInsensitive"):
        if flag in c and not isinstance(c[flag], bool):
            found.append((at(flag), "must be true or false"))
    if op in STRING_LIST + STRING_OPS:
        values = c.get("values")
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            found.append((at("values"), "must be a list of strings"))
        elif any("\\" in v for v in values):
            found.append((at("values"), "may not contain a backslash (SDKs cannot parse it)"))
        if "value" in c:
            found.append((at("value"), f"{op} takes 'values' (a list), not 'value'"))
        return found
    value = c.get("value")
    if "values" in c and c["values"]:
        found.append((at("values"), f"{op} takes one 'value', not 'values'"))
    if not isinstance(value, str):
        found.append((at("value"), "must be a string"))
    elif op in NUMERIC_OPS and not _VALUE_NUMBER.match(value):
        found.append((at("value"), f"must be a number like 42 or -1.5, got {value!r}"))
    elif op in DATE_OPS and (not re.match(r"^\d{4}-\d\d-\d\dT", value) or not parse_date(value)):
        found.append(
            (at("value"), f"must be an RFC 3339 time like 2026-01-31T12:00:00Z, got {value!r}")
        )
    elif op in SEMVER_OPS and (value.startswith("v") or semver_key(value) is None):
        found.append((at("value"), f"must be a semantic version like 1.4.2, got {value!r}"))
    return found
