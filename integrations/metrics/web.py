"""A JSON HTTP endpoint read with a JSONPath as analysis samples (Argo Rollouts' ``web``
provider).

A metric ``{"provider": "web", "address": "http://status.internal/health?slot={{slot}}",
"query": "$.data.successRate", "success_condition": "canary >= 0.99"}`` GETs ``address`` once per
arm at each measurement (rendered with the arm's ``{{slot}}``, ``{{version}}`` and the template's
``{{args.NAME}}``, each value URL-quoted) and reads the JSONPath ``query`` from the answer
(``jsonpath-ng``; Argo's Kubernetes-style braces ``{$.data.ok}`` are accepted). Each value the
path selects is one observation: a number, a numeric string, or true/false (1/0); anything
else is a permanent error that names the path and what was there. A path that selects nothing
is no data, not an error.

Errors: not answering, timing out, a 5xx or invalid JSON are transient; 401/403 and other 4xx
are permanent (``integrations.http``). Every call has an explicit timeout (``WEB_METRICS_TIMEOUT``
seconds, default 10). Headers with secrets come from settings (``WEB_METRICS_HEADERS``: URL
prefix -> headers), never from the template.
"""

from __future__ import annotations

import math
import re
from typing import Any
from urllib.parse import quote

import httpx
from jsonpath_ng import parse as parse_path
from jsonpath_ng.exceptions import JsonPathLexerError, JsonPathParserError

from integrations import http
from integrations.base import IntegrationError, MetricQuery

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_.\-]+)\s*\}\}")
DEFAULT_TIMEOUT = 10.0


def settings_options() -> dict[str, Any]:
    from django.conf import settings

    return {
        "timeout": float(getattr(settings, "WEB_METRICS_TIMEOUT", DEFAULT_TIMEOUT)),
        "headers_by_prefix": dict(getattr(settings, "WEB_METRICS_HEADERS", {}) or {}),
    }


def compile_path(text: str):
    """The parsed JSONPath of ``text`` (Argo's ``{...}`` braces dropped); ValueError if it is
    not one."""
    path = text.strip()
    if path.startswith("{") and path.endswith("}"):
        path = path[1:-1].strip()
    try:
        return parse_path(path)
    except (JsonPathLexerError, JsonPathParserError, Exception) as exc:  # noqa: BLE001
        raise ValueError(f"is not a JSONPath: {exc}") from None


def render(template: str, values: dict[str, Any]) -> str:
    def replace(match: re.Match) -> str:
        name = match.group(1)
        if name not in values:
            raise IntegrationError(
                f"the URL uses {{{{{name}}}}}, which has no value here", permanent=True
            )
        return quote(str(values[name]), safe="")

    return PLACEHOLDER.sub(replace, template)


def observations(body: Any, path_text: str) -> list[float]:
    """Every value the JSONPath selects in ``body``, as numbers."""
    try:
        path = compile_path(path_text)
    except ValueError as exc:
        raise IntegrationError(f"the query {path_text!r} {exc}", permanent=True) from None
    out = []
    for match in path.find(body):
        value = match.value
        if isinstance(value, bool):
            out.append(1.0 if value else 0.0)
        elif isinstance(value, int | float):
            out.append(float(value))
        elif isinstance(value, str):
            try:
                out.append(float(value))
            except ValueError:
                raise IntegrationError(
                    f"{path_text!r} selected {value[:80]!r}, which is not a number", permanent=True
                ) from None
        elif isinstance(value, list) and all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in value
        ):
            out += [float(v) for v in value]
        else:
            raise IntegrationError(
                f"{path_text!r} selected {type(value).__name__} {str(value)[:80]}, which is not "
                "a number (select a field that holds one)",
                permanent=True,
            )
    return [v for v in out if not math.isnan(v)] if out else []


class WebMetrics:
    def __init__(
        self,
        *,
        address: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        headers_by_prefix: dict[str, dict[str, str]] | None = None,
        **_: Any,
    ) -> None:
        if not address:
            raise IntegrationError("a web metric needs its URL as 'address'", permanent=True)
        self.address = address
        self._timeout = httpx.Timeout(timeout, connect=min(timeout, 2.0))
        self._headers_by_prefix = headers_by_prefix or {}

    def begin(self, query: MetricQuery) -> dict[str, Any]:
        return {}  # the endpoint answers what is true now: nothing to remember

    def fetch(
        self, query: MetricQuery, cursor: dict[str, Any], start: float, end: float
    ) -> dict[str, dict[str, Any]]:
        out = {}
        for name, arm in (("baseline", query.baseline), ("canary", query.canary)):
            values = {
                **query.values,
                "target": query.values.get("target", query.target),
                "slot": arm.slot,
                "version": arm.version or "",
                "window": f"{max(1, round(end - start))}s",
                "interval": f"{max(1, round(query.step))}s",
            }
            out[name] = {
                "values": observations(self._get(render(self.address, values)), query.query)
            }
        return out

    def _get(self, url: str) -> Any:
        headers: dict[str, str] = {"Accept": "application/json"}
        for prefix, extra in self._headers_by_prefix.items():
            if url.startswith(prefix):
                headers.update(extra)
        where = f"the web metric endpoint {url.split('?')[0]}"
        response = http.send(
            None, "GET", url, where=where, what="GET", timeout=self._timeout, headers=headers
        )
        http.refused(response, where=where, what="GET")
        return http.json_of(response, where=where, what="GET")
