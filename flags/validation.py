"""What a flag's strategies and variants may be: Unleash's format, checked so that every document
served compiles in every SDK. Each function returns the normalised value or raises
``InvalidSpec`` listing every ``{"path", "message"}`` (the API answers 422 with them).

Pure apart from the error class: no queries (segment ids are checked by the caller).
"""

from __future__ import annotations

import json
import re
import uuid

from flags.engine import constraints as cons
from flags.engine.evaluate import STRATEGIES
from releases.errors import InvalidSpec

KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
SAFE_TEXT = re.compile(r'^[^"\\]*$')  # SDKs splice some parameters into a quoted rule
STICKINESS = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,99}$")
TOTAL_WEIGHT = 1000
PAYLOAD_TYPES = {
    "boolean": ("string",),
    "string": ("string",),
    "number": ("number",),
    "json": ("json",),
}


def fail(message: str, errors: list) -> None:
    if errors:
        raise InvalidSpec(
            message, details={"errors": [{"path": p, "message": m} for p, m in errors]}
        )


RESERVED_KEYS = ("stale", "docs", "openapi.json")  # paths of the flags API


def check_key(key) -> str:
    if key in RESERVED_KEYS:
        fail(
            "That flag key is reserved.", [("key", f"may not be one of {', '.join(RESERVED_KEYS)}")]
        )
    if not isinstance(key, str) or not KEY.match(key):
        fail(
            "That is not a valid flag key.",
            [("key", "letters, digits, . _ - (up to 100), starting with a letter or digit")],
        )
    return key


def check_value(kind: str, value, path: str = "default_value") -> list:
    """Problems with ``value`` as a flag value of ``kind``."""
    if value is None:
        return []
    ok = {
        "boolean": lambda v: isinstance(v, bool),
        "string": lambda v: isinstance(v, str),
        "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
        "json": lambda v: isinstance(v, dict | list),
    }[kind](value)
    return [] if ok else [(path, f"must be a {kind} value for a {kind} flag")]


def constraints_of(raw, path: str) -> tuple[list, list]:
    if raw is None:
        return [], []
    if not isinstance(raw, list):
        return [], [(path, "must be a list")]
    errors, out = [], []
    for i, c in enumerate(raw):
        errors += cons.problems(c, f"{path}[{i}]")
        if isinstance(c, dict):
            out.append({"values": [], "inverted": False, "caseInsensitive": False, **c})
    return out, errors


def _weights(variants: list) -> list:
    """Unleash's rule: fixed weights keep theirs, variable ones share what is left of 1000
    equally (the first ones take the remainder)."""
    fixed = sum(v["weight"] for v in variants if v["weightType"] == "fix")
    variable = [v for v in variants if v["weightType"] != "fix"]
    if variable:
        share, extra = divmod(TOTAL_WEIGHT - fixed, len(variable))
        for i, v in enumerate(variable):
            v["weight"] = share + (1 if i < extra else 0)
    return variants


def variants_of(raw, kind: str, path: str = "variants", *, overrides: bool = True):
    """Normalised variants (weights summing to 1000) and their problems."""
    if raw in (None, []):
        return [], []
    if not isinstance(raw, list):
        return [], [(path, "must be a list")]
    errors, out, names = [], [], set()
    for i, v in enumerate(raw):
        at = f"{path}[{i}]"
        if not isinstance(v, dict):
            errors.append((at, "must be an object"))
            continue
        allowed = {"name", "weight", "weightType", "stickiness", "payload", "overrides"}
        errors += [(f"{at}.{k}", f"unknown key {k!r}") for k in sorted(set(v) - allowed)]
        name = v.get("name")
        if not isinstance(name, str) or not KEY.match(name) or name == "disabled":
            errors.append(
                (f"{at}.name", "must be a variant name (letters, digits, . _ -), not 'disabled'")
            )
        elif name in names:
            errors.append((f"{at}.name", f"{name!r} is used twice"))
        names.add(name)
        weight_type = v.get("weightType", "variable" if "weight" not in v else "fix")
        if weight_type not in ("fix", "variable"):
            errors.append((f"{at}.weightType", "must be 'fix' or 'variable'"))
        weight = v.get("weight", 0)
        if weight_type == "fix" and (not isinstance(weight, int) or not 0 <= weight <= 1000):
            errors.append((f"{at}.weight", "must be a whole number from 0 to 1000 (per mille)"))
        stickiness = v.get("stickiness", "default")
        if not isinstance(stickiness, str) or not STICKINESS.match(stickiness):
            errors.append((f"{at}.stickiness", "must be 'default' or a context field name"))
        item = {
            "name": name,
            "weight": weight if isinstance(weight, int) else 0,
            "weightType": weight_type,
            "stickiness": stickiness,
        }
        payload = v.get("payload")
        if payload is not None:
            errors += _payload_problems(payload, kind, f"{at}.payload")
            item["payload"] = payload
        if v.get("overrides"):
            if not overrides:
                errors.append((f"{at}.overrides", "a strategy's variants have no overrides"))
            else:
                errors += _override_problems(v["overrides"], f"{at}.overrides")
                item["overrides"] = v["overrides"]
        out.append(item)
    if errors:
        return out, errors
    fixed = sum(v["weight"] for v in out if v["weightType"] == "fix")
    if fixed > TOTAL_WEIGHT or (
        fixed != TOTAL_WEIGHT and all(v["weightType"] == "fix" for v in out)
    ):
        return out, [
            (
                path,
                f"fixed weights add up to {fixed}; they must make 1000 "
                "(or leave room for variable ones)",
            )
        ]
    for v in out[1:]:
        if v["stickiness"] != out[0]["stickiness"]:
            errors.append((path, "every variant must use the same stickiness"))
            break
    return _weights(out), errors


def _payload_problems(payload, kind: str, at: str) -> list:
    if not isinstance(payload, dict) or set(payload) != {"type", "value"}:
        return [(at, 'must be {"type": …, "value": "…"}')]
    if payload["type"] not in PAYLOAD_TYPES[kind]:
        return [(f"{at}.type", f"a {kind} flag's payloads are {' or '.join(PAYLOAD_TYPES[kind])}")]
    value = payload["value"]
    if not isinstance(value, str):
        return [(f"{at}.value", "must be a string (Unleash carries every payload as text)")]
    if payload["type"] == "number":
        try:
            float(value)
        except ValueError:
            return [(f"{at}.value", f"must be a number, got {value!r}")]
    if payload["type"] == "json":
        try:
            json.loads(value)
        except ValueError:
            return [(f"{at}.value", "must be a JSON document")]
    return []


def _override_problems(raw, at: str) -> list:
    if not isinstance(raw, list):
        return [(at, "must be a list")]
    errors = []
    for i, o in enumerate(raw):
        ok = (
            isinstance(o, dict)
            and isinstance(o.get("contextName"), str)
            and isinstance(o.get("values"), list)
            and all(isinstance(x, str) for x in o["values"])
        )
        if not ok:
            errors.append((f"{at}[{i}]", 'must be {"contextName": "userId", "values": ["…"]}'))
    return errors


def strategy_of(raw, kind: str, path: str, segment_ids) -> tuple[dict, list]:
    if not isinstance(raw, dict):
        return {}, [(path, "must be an object")]
    errors = []
    allowed = {
        "id",
        "name",
        "parameters",
        "constraints",
        "segments",
        "variants",
        "disabled",
        "title",
        "sortOrder",
    }
    errors += [(f"{path}.{k}", f"unknown key {k!r}") for k in sorted(set(raw) - allowed)]
    name = raw.get("name")
    if name not in STRATEGIES:
        errors.append((f"{path}.name", f"must be one of {', '.join(STRATEGIES)}"))
    params = raw.get("parameters") or {}
    if not isinstance(params, dict) or not all(isinstance(v, str) for v in params.values()):
        errors.append((f"{path}.parameters", "must be an object of strings"))
        params = {}
    params = dict(params)
    if name == "flexibleRollout":
        rollout = params.get("rollout", "")
        if not rollout.isdigit() or int(rollout) > 100:
            errors.append((f"{path}.parameters.rollout", "must be a whole percentage, 0 to 100"))
        params.setdefault("stickiness", "default")
        if not STICKINESS.match(params["stickiness"]):
            errors.append((f"{path}.parameters.stickiness", "must be default, random or a field"))
        params.setdefault("groupId", "")
    if name == "userWithId" and not params.get("userIds", "").strip():
        errors.append((f"{path}.parameters.userIds", "must list user ids, comma-separated"))
    if name == "remoteAddress" and not params.get("IPs", "").strip():
        errors.append((f"{path}.parameters.IPs", "must list addresses or CIDR ranges"))
    for key, value in params.items():
        if not SAFE_TEXT.match(value):
            errors.append((f"{path}.parameters.{key}", "may not contain quotes or backslashes"))
    constraints, problems = constraints_of(raw.get("constraints"), f"{path}.constraints")
    errors += problems
    segments = raw.get("segments") or []
    if not isinstance(segments, list) or not all(isinstance(s, int) for s in segments):
        errors.append((f"{path}.segments", "must be a list of segment ids"))
        segments = []
    for s in segments:
        if s not in segment_ids:
            errors.append((f"{path}.segments", f"there is no segment {s}"))
    variants, problems = variants_of(raw.get("variants"), kind, f"{path}.variants", overrides=False)
    errors += problems
    strategy = {
        "id": raw.get("id") or str(uuid.uuid4()),
        "name": name,
        "parameters": params,
        "constraints": constraints,
        "segments": segments,
        "variants": variants,
        "disabled": bool(raw.get("disabled", False)),
    }
    return strategy, errors


def strategies_of(raw, kind: str, flag_key: str, segment_ids) -> list:
    """Normalised strategies (a rollout's empty ``groupId`` becomes the flag key), or
    InvalidSpec with every problem."""
    if not isinstance(raw, list):
        fail("Strategies must be a list.", [("strategies", "must be a list")])
    errors, out = [], []
    for i, item in enumerate(raw):
        strategy, problems = strategy_of(item, kind, f"strategies[{i}]", set(segment_ids))
        errors += problems
        if strategy.get("name") == "flexibleRollout" and not strategy["parameters"]["groupId"]:
            strategy["parameters"]["groupId"] = flag_key
        out.append(strategy)
    fail("The strategies are not valid.", errors)
    return out


def feature_variants(raw, kind: str) -> list:
    variants, errors = variants_of(raw, kind)
    fail("The variants are not valid.", errors)
    return variants


def segment_constraints(raw) -> list:
    out, errors = constraints_of(raw, "constraints")
    fail("The segment's constraints are not valid.", errors)
    return out
