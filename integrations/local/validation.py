"""The control API's request bodies, checked field by field (errors as ``(path, message)``)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

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


def router_port(body: Any) -> int | None:
    body = _object(body)
    errors = _unknown(body, {"router_port"})
    port = body.get("router_port")
    if port is not None and (
        isinstance(port, bool) or not isinstance(port, int) or not 1024 <= port <= 65535
    ):
        errors.append(("router_port", f"must be an integer between 1024 and 65535, got {port!r}"))
    _fail("target", errors)
    return port


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


def weights(body: Any) -> dict[str, int] | None:
    body = _object(body)
    errors = _unknown(body, {"weights"})
    if "weights" not in body:
        errors.append(("weights", "is required: an object of slot -> 0..100, or null"))
    value = body.get("weights")
    if value is not None:
        if not isinstance(value, dict):
            errors.append(("weights", "must be an object of slot -> 0..100, or null"))
        else:
            for slot, weight in value.items():
                if not NAME.match(slot):
                    errors.append((f"weights.{slot}", "is not a valid slot name"))
                if isinstance(weight, bool) or not isinstance(weight, int):
                    errors.append((f"weights.{slot}", f"must be an integer, got {weight!r}"))
                elif not 0 <= weight <= 100:
                    errors.append((f"weights.{slot}", f"must be between 0 and 100, got {weight}"))
            if not errors and sum(value.values()) != 100:
                errors.append(("weights", f"must add up to 100, got {sum(value.values())}"))
    _fail("weights", errors)
    return dict(value) if value is not None else None
