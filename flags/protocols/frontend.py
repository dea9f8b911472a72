"""Unleash's frontend API, so Unleash's browser and mobile SDKs (``unleash-proxy-client`` and the
SDKs built on it) can point at Switchyard as they would at an Unleash server or Edge:

- ``GET /api/frontend?userId=…&sessionId=…&properties[plan]=gold`` (or ``POST`` with the
  context as the JSON body): ``{"toggles": [{"name", "enabled": true, "variant": {"name",
  "enabled", "payload"?, "feature_enabled"}, "impressionData"}]}`` -- the flags ON for that
  context only (as Unleash does: a client must not learn what is off, nor any strategy), with an
  ``ETag``; ``If-None-Match`` with it answers 304;
- ``POST /api/frontend/client/metrics``: the SDK's counts (``bucket.toggles``), 202;
- ``POST /api/frontend/client/register``: 202.

Without a ``remoteAddress``, the caller's address is used (as Unleash does). The SDK token says
which environment; evaluations are counted as OFREP's are.
"""

from __future__ import annotations

import json

from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt

from flags import sdk, state
from flags.engine import evaluate
from flags.protocols import unleash
from flags.protocols.common import environment_or_401, etag_answer, json_body

NAMED = ("userId", "sessionId", "remoteAddress", "environment", "appName", "currentTime")


def _bad(message: str) -> JsonResponse:
    return JsonResponse({"code": "invalid_request", "message": message, "details": {}}, status=400)


def context_from_query(query) -> dict:
    context, props = {}, {}
    for key in query:
        value = query.get(key)
        if key.startswith("properties[") and key.endswith("]"):
            props[key[len("properties[") : -1]] = value
        elif key in NAMED:
            context[key] = value
        else:
            props[key] = value  # Unleash accepts custom fields at the top level too
    context["properties"] = props
    return context


def context_from_body(body) -> dict:
    if body is None:
        return {"properties": {}}
    if not isinstance(body, dict):
        raise ValueError("the body must be a context object")
    raw = body.get("context", body) if isinstance(body.get("context"), dict) else body
    context = {k: str(v) for k, v in raw.items() if k in NAMED and v is not None}
    props = raw.get("properties") or {}
    if not isinstance(props, dict):
        raise ValueError("properties must be an object")
    context["properties"] = {str(k): str(v) for k, v in props.items()}
    for k, v in raw.items():
        if k not in NAMED and k != "properties" and isinstance(v, str | int | float | bool):
            context["properties"].setdefault(k, str(v))
    return context


def _variant(result) -> dict:
    variant = result.variant
    out = {"name": variant["name"], "enabled": bool(variant.get("enabled"))}
    if variant.get("payload") is not None:
        out["payload"] = variant["payload"]
    out["feature_enabled"] = result.enabled
    return out


@csrf_exempt
def toggles(request):
    if request.method not in ("GET", "POST"):
        return JsonResponse(
            {"code": "method_not_allowed", "message": "GET or POST.", "details": {}}, status=405
        )
    env_id, refused = environment_or_401(request)
    if refused:
        return refused
    try:
        if request.method == "GET":
            context = context_from_query(request.GET)
        else:
            context = context_from_body(json_body(request))
    except ValueError as exc:
        return _bad(f"The context is not valid: {exc}.")
    context.setdefault("remoteAddress", request.META.get("REMOTE_ADDR", ""))
    snapshot = state.current(env_id)
    out = []
    for key in snapshot.compiled.names():
        result = evaluate(snapshot.compiled, key, context)
        if result is None:
            continue
        sdk.count(env_id, key, result.enabled, result.variant_name)
        if not result.enabled:
            continue
        feature = snapshot.compiled.features[key]
        out.append(
            {
                "name": key,
                "enabled": True,
                "variant": _variant(result),
                "impressionData": bool(feature.get("impressionData")),
            }
        )
    sdk.flush_if_due()
    body = json.dumps({"toggles": out}, separators=(",", ":")).encode()
    return etag_answer(request, body)


metrics = unleash.metrics
register = unleash.register
