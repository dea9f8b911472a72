"""Canary steps that add named routes: ``set_header_route`` and ``set_mirror_route``.

Ours (Argo Rollouts' ``setHeaderRoute`` / ``setMirrorRoute``, translated by
``strategies.argo_canary``)::

    {"set_header_route": {"name": "beta-users",
                          "match": [{"header": "X-Beta", "value": {"exact": "yes"}}]}}
    {"set_mirror_route": {"name": "mirror-posts", "percentage": 50,
                          "match": [{"method": {"exact": "POST"}, "path": {"prefix": "/color"}}]}}

A header route sends every request matching all of its header matches to the new release,
whatever the weight; a mirror route copies ``percentage``% of the matching requests to the new
release and never answers users from the copy. A value match is one of ``exact``, ``prefix``,
``regex``. A step with a name and no ``match`` removes that route; every route is removed when
the new release is promoted or rolled back. What the target's router must be able to do for them
(``header_routes``, ``mirroring``) is in ``strategies.spec.required_capabilities``.
"""

from __future__ import annotations

import re
from typing import Any

from strategies.fields import FieldError, Fields, show

MATCH_KINDS = ("exact", "prefix", "regex")
TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,62}")
HEADER_EXAMPLE = '{"name": "beta", "match": [{"header": "X-Beta", "value": {"exact": "yes"}}]}'
MIRROR_EXAMPLE = '{"name": "mirror", "percentage": 50, "match": [{"method": {"exact": "POST"}}]}'


def read_header_route(value: Any, path: str, errors: list[FieldError]) -> dict[str, Any] | None:
    fields = _object(value, path, errors, HEADER_EXAMPLE)
    if fields is None:
        return None
    out = {"name": _name(fields), "match": _matches(fields, _header_match)}
    fields.finish()
    return out


def read_mirror_route(value: Any, path: str, errors: list[FieldError]) -> dict[str, Any] | None:
    fields = _object(value, path, errors, MIRROR_EXAMPLE)
    if fields is None:
        return None
    out = {
        "name": _name(fields),
        "percentage": fields.take("percentage", 100, _percentage),
        "match": _matches(fields, _request_match),
    }
    fields.finish()
    return out


def words(step: dict[str, Any]) -> str:
    if "set_header_route" in step:
        route = step["set_header_route"]
        if not route["match"]:
            return f"remove header route {show(route['name'])}"
        said = " and ".join(f"{m['header']} {_said(m['value'])}" for m in route["match"])
        return f"header route {show(route['name'])}: requests with {said} go to the new release"
    route = step["set_mirror_route"]
    if not route["match"]:
        return f"remove mirror route {show(route['name'])}"
    said = " and ".join(_request_said(m) for m in route["match"]) or "every request"
    return (
        f"mirror route {show(route['name'])}: copy {route['percentage']}% of requests "
        f"({said}) to the new release (its answers are dropped)"
    )


def _object(value: Any, path: str, errors: list[FieldError], example: str) -> Fields | None:
    if not isinstance(value, dict):
        errors.append(FieldError(path, f"must be an object like {example}, got {show(value)}"))
        return None
    if "name" not in value:
        errors.append(FieldError(f"{path}.name", "is required: the route's name"))
    return Fields(value, path, errors)


def _name(fields: Fields) -> str | None:
    def convert(value: Any) -> str:
        if not isinstance(value, str) or not NAME.fullmatch(value):
            raise ValueError(f"must be a name (letters, digits, '-', '_', '.'), got {show(value)}")
        return value

    return fields.take("name", None, convert)


def _matches(fields: Fields, read_one) -> list[dict[str, Any]] | None:
    fields.seen.add("match")
    raw = fields.raw.get("match") or []
    path = fields.path("match")
    if not isinstance(raw, list):
        fields.errors.append(FieldError(path, f"must be a list of matches, got {show(raw)}"))
        return None
    out = []
    for index, item in enumerate(raw):
        where = f"{path}[{index}]"
        if not isinstance(item, dict):
            fields.errors.append(FieldError(where, f"must be an object, got {show(item)}"))
            continue
        out.append(read_one(Fields(item, where, fields.errors)))
    return out


def _header_match(fields: Fields) -> dict[str, Any]:
    if "header" not in fields.raw:
        fields.errors.append(FieldError(fields.path("header"), "is required: a header name"))
    out = {
        "header": fields.take("header", None, _token),
        "value": fields.take("value", None, _value_match),
    }
    if "value" not in fields.raw:
        fields.errors.append(FieldError(fields.path("value"), "is required, like {'exact': 'yes'}"))
    fields.finish()
    return out


def _request_match(fields: Fields) -> dict[str, Any]:
    out = {
        "method": fields.take("method", None, _value_match),
        "path": fields.take("path", None, _value_match),
        "headers": fields.take("headers", {}, _header_values),
    }
    fields.finish()
    return out


def _value_match(value: Any) -> dict[str, str]:
    names = ", ".join(MATCH_KINDS)
    if not isinstance(value, dict) or len(value) != 1:
        raise ValueError(f"must be an object with one of {names}, got {show(value)}")
    ((kind, text),) = value.items()
    if kind not in MATCH_KINDS:
        raise ValueError(f"must be an object with one of {names}, got {show(kind)}")
    if not isinstance(text, str):
        raise ValueError(f"{kind} must be a string, got {show(text)}")
    if kind == "regex":
        try:
            re.compile(text)
        except re.error as exc:
            raise ValueError(f"regex {show(text)} is not valid: {exc}") from None
    return {kind: text}


def _header_values(value: Any) -> dict[str, dict[str, str]]:
    if not isinstance(value, dict):
        raise ValueError(f"must be an object of header name -> match, got {show(value)}")
    return {_token(name): _value_match(match) for name, match in value.items()}


def _token(value: Any) -> str:
    if not isinstance(value, str) or not TOKEN.fullmatch(value):
        raise ValueError(f"must be a header name like 'X-Beta', got {show(value)}")
    return value


def _percentage(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100:
        raise ValueError(f"must be a whole number between 0 and 100, got {show(value)}")
    return value


def _said(match: dict[str, str] | None) -> str:
    if not match:
        return "(any value)"
    ((kind, text),) = match.items()
    return {"exact": "=", "prefix": "starting with", "regex": "matching"}[kind] + f" {show(text)}"


def _request_said(match: dict[str, Any]) -> str:
    parts = []
    if match.get("method"):
        parts.append(f"method {_said(match['method'])}")
    if match.get("path"):
        parts.append(f"path {_said(match['path'])}")
    for name, value in (match.get("headers") or {}).items():
        parts.append(f"{name} {_said(value)}")
    return ", ".join(parts) or "every request"
