"""The OpenFeature Remote Evaluation Protocol (OFREP), so OpenFeature's OFREP providers work
unchanged:

- ``POST /ofrep/v1/evaluate/flags/{key}``: one flag for ``{"context": {...}}``;
- ``POST /ofrep/v1/evaluate/flags``: every flag of the environment, with an ``ETag`` over the
  answer; ``If-None-Match`` with it answers 304 (nothing changed for this context);
- ``GET /ofrep/v1/configuration``: what this server supports.

The context maps onto Unleash's: ``targetingKey`` is the ``userId`` (as Unleash's own
OpenFeature providers do), ``userId`` / ``sessionId`` / ``remoteAddress`` / ``environment`` /
``appName`` / ``currentTime`` keep their meaning, anything else is a custom property (text;
true/false for booleans, JSON for objects). Values: a boolean flag's value is whether it is on
(the variant, if any, is named); another kind's value is the chosen variant's payload, else the
flag's default value.
"""

from __future__ import annotations

import json

from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from flags import sdk, state
from flags.engine import evaluate
from flags.protocols.common import environment_or_401, etag_answer, json_body

TOP_LEVEL = ("userId", "sessionId", "remoteAddress", "environment", "appName", "currentTime")


class BadContext(ValueError):
    def __init__(self, code: str, details: str):
        super().__init__(details)
        self.code, self.details = code, details


def _text(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) or value is None:
        return json.dumps(value)
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def unleash_context(body) -> dict:
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise BadContext("PARSE_ERROR", 'The body must be {"context": {...}}.')
    raw = body.get("context", {})
    if not isinstance(raw, dict):
        raise BadContext("INVALID_CONTEXT", "The context must be an object.")
    context, props = {}, {}
    for key, value in raw.items():
        if key == "targetingKey":
            context.setdefault("userId", _text(value))
        elif key in TOP_LEVEL:
            context[key] = _text(value)
        else:
            props[key] = _text(value)
    context["properties"] = props
    return context


def _value(kind: str, default, result):
    if kind == "boolean":
        return result.enabled
    payload = result.variant.get("payload") if result.enabled else None
    if payload is None:
        return default
    text = payload["value"]
    if kind == "number":
        number = float(text)
        return int(number) if number.is_integer() and "." not in text else number
    if kind == "json":
        return json.loads(text)
    return text


def resolve(snapshot, key: str, context: dict) -> dict | None:
    result = evaluate(snapshot.compiled, key, context)
    if result is None:
        return None
    kind, default, flag_type = snapshot.flags[key]
    variant = result.variant_name
    if variant == "disabled":
        variant = ("on" if result.enabled else "off") if kind == "boolean" else "default"
    sdk.count(snapshot.environment_id, key, result.enabled, result.variant_name)
    return {
        "key": key,
        "value": _value(kind, default, result),
        "reason": result.reason,
        "variant": variant,
        "metadata": {"flagType": flag_type, "revision": snapshot.revision},
    }


def _error(key, code: str, details: str, status: int) -> JsonResponse:
    body = {"errorCode": code, "errorDetails": details}
    if key is not None:
        body = {"key": key, **body}
    return JsonResponse(body, status=status)


def _context_or_error(request, key):
    try:
        return unleash_context(json_body(request)), None
    except BadContext as exc:
        return None, _error(key, exc.code, exc.details, 400)
    except ValueError as exc:
        return None, _error(key, "PARSE_ERROR", f"The body is not JSON: {exc}", 400)


@csrf_exempt
@require_POST
def evaluate_flag(request, key: str):
    env_id, refused = environment_or_401(request)
    if refused:
        return refused
    context, error = _context_or_error(request, key)
    if error:
        return error
    answer = resolve(state.current(env_id), key, context)
    sdk.flush_if_due()
    if answer is None:
        return _error(key, "FLAG_NOT_FOUND", f"There is no flag {key!r} here.", 404)
    return JsonResponse(answer)


@csrf_exempt
@require_POST
def evaluate_all(request):
    env_id, refused = environment_or_401(request)
    if refused:
        return refused
    context, error = _context_or_error(request, None)
    if error:
        return error
    snapshot = state.current(env_id)
    flags = [resolve(snapshot, key, context) for key in snapshot.compiled.names()]
    sdk.flush_if_due()
    body = json.dumps(
        {"flags": flags, "metadata": {"revision": snapshot.revision}}, separators=(",", ":")
    ).encode()
    return etag_answer(request, body)


@require_GET
def configuration(request):
    _, refused = environment_or_401(request)
    if refused:
        return refused
    return JsonResponse(
        {
            "name": "Switchyard",
            "capabilities": {
                "cacheInvalidation": {"polling": {"enabled": True, "minPollingIntervalMs": 1000}},
                "flagEvaluation": {
                    "supportedTypes": ["boolean", "string", "integer", "float", "object"]
                },
            },
        }
    )
