"""The control API's request bodies, checked field by field (errors as ``(path, message)``)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from integrations.base import Routing
from integrations.local.artifacts import HealthSettings, LaunchSpec, parse_artifact, parse_health

Errors = list[tuple[str, str]]
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
MAX_REPLICAS = 64


class Invalid(Exception):
    def __init__(self, message: str, errors: Errors) -> None:
        super().__init__(message)
        self.message = message
        self.errors = errors


def check_name(kind: str, value: str) -> None:
    if not NAME.match(value):
        raise Invalid(
            f"invalid {kind} name {value!r}",
            [(kind, "must be 1-100 letters, digits, '.', '_' or '-', not starting with . _ -")],
        )


def _object(body: Any) -> dict[str, Any]:
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise Invalid("the request body must be a JSON object", [("", "must be an object")])
    return body


def _unknown(body: dict[str, Any], known: set[str]) -> Errors:
    return [(key, "is not a known field") for key in sorted(set(body) - known)]


def _fail(what: str, errors: Errors) -> None:
    if errors:
        first = f"{errors[0][0]}: {errors[0][1]}" if errors[0][0] else errors[0][1]
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise Invalid(f"invalid {what}: {first}{more}", errors)


PORT_KEYS = ("router_port", "preview_port")


def port_errors(body: dict[str, Any]) -> Errors:
    """Problems with ``router_port`` / ``preview_port`` (each optional, and not the same)."""
    errors: Errors = []
    for key in PORT_KEYS:
        port = body.get(key)
        if port is not None and (
            isinstance(port, bool) or not isinstance(port, int) or not 1024 <= port <= 65535
        ):
            errors.append((key, f"must be an integer between 1024 and 65535, got {port!r}"))
    router, preview = (body.get(key) for key in PORT_KEYS)
    if router is not None and router == preview and not errors:
        errors.append(("preview_port", f"must differ from router_port (both are {router})"))
    return errors


def target_ports(body: Any) -> tuple[int | None, int | None]:
    """The ``router_port`` and ``preview_port`` asked for (None: any free port)."""
    body = _object(body)
    errors = _unknown(body, set(PORT_KEYS)) + port_errors(body)
    _fail("target", errors)
    return body.get("router_port"), body.get("preview_port")


@dataclass(frozen=True)
class SlotRequest:
    version: str
    artifact: dict[str, Any]
    spec: LaunchSpec
    health_raw: dict[str, Any]
    health: HealthSettings
    replicas: int


def slot_request(body: Any) -> SlotRequest:
    body = _object(body)
    errors = _unknown(body, {"version", "artifact", "health", "replicas"})
    version = body.get("version")
    if not isinstance(version, str) or not version.strip() or len(version) > 128:
        errors.append(("version", "is required: a non-empty string of at most 128 characters"))
        version = ""
    replicas = body.get("replicas")
    if (
        isinstance(replicas, bool)
        or not isinstance(replicas, int)
        or not 0 <= replicas <= MAX_REPLICAS
    ):
        errors.append(("replicas", f"must be an integer between 0 and {MAX_REPLICAS}"))
    artifact = body.get("artifact") or {}
    spec, artifact_errors = parse_artifact(artifact, version)
    errors += artifact_errors
    health_raw = body.get("health") or {}
    health, health_errors = parse_health(health_raw, spec.health_path if spec else "/health")
    errors += health_errors
    _fail("slot", errors)
    assert spec is not None
    return SlotRequest(version, artifact, spec, health_raw, health, replicas)


def _weights_errors(body: dict[str, Any]) -> Errors:
    errors: Errors = []
    if "weights" not in body:
        return [("weights", "is required: an object of slot -> 0..100, or null")]
    value = body["weights"]
    if value is None:
        return errors
    if not isinstance(value, dict):
        return [("weights", "must be an object of slot -> 0..100, or null")]
    for slot, weight in value.items():
        if not NAME.match(slot):
            errors.append((f"weights.{slot}", "is not a valid slot name"))
        if isinstance(weight, bool) or not isinstance(weight, int):
            errors.append((f"weights.{slot}", f"must be an integer, got {weight!r}"))
        elif not 0 <= weight <= 100:
            errors.append((f"weights.{slot}", f"must be between 0 and 100, got {weight}"))
    if not errors and sum(value.values()) != 100:
        errors.append(("weights", f"must add up to 100, got {sum(value.values())}"))
    return errors


def weights(body: Any) -> dict[str, int] | None:
    body = _object(body)
    errors = _unknown(body, {"weights"}) + _weights_errors(body)
    _fail("weights", errors)
    value = body["weights"]
    return dict(value) if value is not None else None


# an HTTP token (RFC 9110): what a header or cookie name may be
TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}$")
SLOT_KEYS = ("preview_slot", "stable_slot", "canary_slot")
ROUTING_KEYS = (
    "weights",
    *SLOT_KEYS,
    "header",
    "cookie",
    "sticky_key",
    "header_routes",
    "mirror_routes",
)
MATCH_KINDS = ("exact", "prefix", "regex")


def routing(body: Any) -> Routing:
    """The whole routing. ``weights`` is required (null: even); every other key defaults to null.

    ``header`` / ``cookie`` / ``sticky_key`` need both ``stable_slot`` and ``canary_slot``.
    """
    body = _object(body)
    errors = _unknown(body, set(ROUTING_KEYS)) + _weights_errors(body)
    for key in SLOT_KEYS:
        value = body.get(key)
        if value is not None and (not isinstance(value, str) or not NAME.match(value)):
            errors.append((key, f"must be a slot name or null, got {value!r}"))
    for key in ("header", "cookie"):
        value = body.get(key)
        if value is not None and (not isinstance(value, str) or not TOKEN.match(value)):
            errors.append((key, f"must be a {key} name (an HTTP token) or null, got {value!r}"))
    sticky = body.get("sticky_key")
    if sticky is not None:
        kind, _, name = sticky.partition(":") if isinstance(sticky, str) else ("", "", "")
        if kind not in ("header", "cookie") or not TOKEN.match(name):
            errors.append(
                (
                    "sticky_key",
                    f"must be 'header:NAME' or 'cookie:NAME' (e.g. 'header:X-User-Id'), "
                    f"got {sticky!r}",
                )
            )
    errors += _header_routes_errors(body.get("header_routes"))
    errors += _mirror_routes_errors(body.get("mirror_routes"))
    stable, canary = body.get("stable_slot"), body.get("canary_slot")
    if stable is not None and stable == canary:
        errors.append(("canary_slot", f"must differ from stable_slot (both are {stable!r})"))
    rules = [
        key
        for key in ("header", "cookie", "sticky_key", "header_routes", "mirror_routes")
        if body.get(key) is not None
    ]
    if rules:
        for key, value in (("stable_slot", stable), ("canary_slot", canary)):
            if value is None:
                errors.append((key, f"is required when {' and '.join(rules)} is set"))
    _fail("routing", errors)
    value = body["weights"]
    return Routing(
        weights=dict(value) if value is not None else None,
        preview_slot=body.get("preview_slot"),
        stable_slot=stable,
        canary_slot=canary,
        header=body.get("header"),
        cookie=body.get("cookie"),
        sticky_key=sticky,
        header_routes=tuple(body["header_routes"]) if body.get("header_routes") else None,
        mirror_routes=tuple(body["mirror_routes"]) if body.get("mirror_routes") else None,
    )


def _header_routes_errors(routes: Any) -> list[tuple[str, str]]:
    """``header_routes``: null or [{"name", "match": [{"header", "value": {KIND: text}}]}]."""
    if routes is None:
        return []
    if not isinstance(routes, list):
        return [("header_routes", f"must be a list or null, got {routes!r}")]
    errors = []
    for i, route in enumerate(routes):
        where = f"header_routes[{i}]"
        if not isinstance(route, dict) or not isinstance(route.get("match"), list):
            errors.append((where, 'must be {"name": ..., "match": [...]}'))
            continue
        for j, match in enumerate(route["match"]):
            at = f"{where}.match[{j}]"
            value = match.get("value") if isinstance(match, dict) else None
            header = match.get("header") if isinstance(match, dict) else None
            if not isinstance(header, str) or not TOKEN.match(header):
                errors.append((f"{at}.header", f"must be a header name, got {header!r}"))
            if (
                not isinstance(value, dict)
                or len(value) != 1
                or next(iter(value)) not in MATCH_KINDS
                or not isinstance(next(iter(value.values())), str)
            ):
                errors.append((f"{at}.value", f"must be one of {', '.join(MATCH_KINDS)}: text"))
            elif "regex" in value:
                try:
                    re.compile(value["regex"])
                except re.error as exc:
                    errors.append((f"{at}.value.regex", f"is not a valid regex: {exc}"))
    return errors


def _mirror_routes_errors(routes: Any) -> list[tuple[str, str]]:
    """``mirror_routes``: null or [{"name", "percentage": 0..100, "match": [{"method", "path",
    "headers": {NAME: ...}}]}], each value match one of exact / prefix / regex."""
    if routes is None:
        return []
    if not isinstance(routes, list):
        return [("mirror_routes", f"must be a list or null, got {routes!r}")]
    errors = []
    for i, route in enumerate(routes):
        where = f"mirror_routes[{i}]"
        if not isinstance(route, dict) or not isinstance(route.get("match") or [], list):
            errors.append((where, 'must be {"name": ..., "percentage": ..., "match": [...]}'))
            continue
        share = route.get("percentage", 100)
        if isinstance(share, bool) or not isinstance(share, int) or not 0 <= share <= 100:
            errors.append((f"{where}.percentage", f"must be 0..100, got {share!r}"))
        for j, match in enumerate(route.get("match") or []):
            at = f"{where}.match[{j}]"
            if not isinstance(match, dict):
                errors.append((at, "must be an object"))
                continue
            values = [(f"{at}.{k}", match[k]) for k in ("method", "path") if match.get(k)]
            headers = match.get("headers") or {}
            if not isinstance(headers, dict):
                errors.append((f"{at}.headers", "must be an object of header name -> match"))
                headers = {}
            values += [(f"{at}.headers.{name}", value) for name, value in headers.items()]
            for path, value in values:
                errors += _value_match_errors(path, value)
    return errors


def _value_match_errors(path: str, value: Any) -> list[tuple[str, str]]:
    if (
        not isinstance(value, dict)
        or len(value) != 1
        or next(iter(value)) not in MATCH_KINDS
        or not isinstance(next(iter(value.values())), str)
    ):
        return [(path, f"must be one of {', '.join(MATCH_KINDS)}: text")]
    if "regex" in value:
        try:
            re.compile(value["regex"])
        except re.error as exc:
            return [(f"{path}.regex", f"is not a valid regex: {exc}")]
    return []
