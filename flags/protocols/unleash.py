"""Unleash's client API, so that Unleash server-side SDKs can point at Switchyard unchanged:

- ``GET /api/client/features``: the environment's features document (``If-None-Match`` with
  the current ETag answers 304, as Unleash does; SDKs poll with it);
- ``POST /api/client/metrics``: the SDK's evaluation counts (``bucket.toggles``), 202;
- ``POST /api/client/register``: the SDK introduces itself, 202.

The SDK token (``Authorization: swyf_…``) says which environment.
"""

from __future__ import annotations

from datetime import datetime

from django.http import HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from flags import sdk, state
from flags.models import SdkInstance
from flags.protocols.common import environment_or_401, json_body


def _bad(message: str) -> JsonResponse:
    return JsonResponse({"code": "invalid_request", "message": message, "details": {}}, status=400)


@require_GET
def features(request):
    env_id, refused = environment_or_401(request)
    if refused:
        return refused
    snapshot = state.current(env_id)
    if request.headers.get("If-None-Match") == snapshot.etag:
        response = HttpResponse(status=304)
    else:
        response = HttpResponse(snapshot.body, content_type="application/json")
    response["ETag"] = snapshot.etag
    return response


def _when(text, default):
    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return default


@csrf_exempt
@require_POST
def metrics(request):
    env_id, refused = environment_or_401(request)
    if refused:
        return refused
    try:
        body = json_body(request) or {}
    except ValueError as exc:
        return _bad(f"The body is not JSON: {exc}.")
    bucket = body.get("bucket") if isinstance(body, dict) else None
    toggles = bucket.get("toggles") if isinstance(bucket, dict) else None
    if not isinstance(toggles, dict) or not all(isinstance(v, dict) for v in toggles.values()):
        return _bad('Send {"bucket": {"start", "stop", "toggles": {name: {"yes", "no"}}}}.')
    try:
        sdk.record(env_id, toggles, _when(bucket.get("stop"), timezone.now()))
    except (TypeError, ValueError) as exc:
        return _bad(f"The counts must be whole numbers: {exc}.")
    return HttpResponse(status=202)


@csrf_exempt
@require_POST
def register(request):
    env_id, refused = environment_or_401(request)
    if refused:
        return refused
    try:
        body = json_body(request) or {}
    except ValueError as exc:
        return _bad(f"The body is not JSON: {exc}.")
    if not isinstance(body, dict) or not isinstance(body.get("appName"), str):
        return _bad('Send {"appName", "instanceId", "sdkVersion", "strategies", "interval"}.')
    interval = body.get("interval")
    SdkInstance.objects.update_or_create(
        environment_id=env_id,
        app_name=body["appName"][:200],
        instance_id=str(body.get("instanceId", ""))[:200],
        defaults={
            "sdk_version": str(body.get("sdkVersion", ""))[:100],
            "strategies": [s for s in body.get("strategies", []) if isinstance(s, str)][:50]
            if isinstance(body.get("strategies"), list)
            else [],
            "interval_ms": interval if isinstance(interval, int) and interval >= 0 else 0,
            "started_at": _when(body.get("started"), None),
            "last_seen_at": timezone.now(),
        },
    )
    return HttpResponse(status=202)
