"""The experiment events endpoint: ``POST /experiments/v1/events`` with the SDK token of the
environment (as the Unleash and OFREP endpoints take it) and
``{"events": [{"flag", "variant", "type": "exposure" | "conversion", "count": 1}]}``.

Bounded: a body of at most 256 KiB, at most ``MAX_EVENTS`` events, names of at most 100
characters, counts 1..``MAX_COUNT``. Answers 202 ``{"accepted", "ignored"}`` (ignored: no
running experiment on that flag here, or no such variant); 400 names every bad event by path.
"""

from __future__ import annotations

from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from flags import experiments
from flags.protocols.common import environment_or_401, json_body


@csrf_exempt
@require_POST
def events(request):
    env_id, refused = environment_or_401(request)
    if refused:
        return refused
    try:
        body = json_body(request)
    except ValueError as exc:
        return JsonResponse(
            {"code": "invalid_request", "message": f"The body is not JSON: {exc}.", "details": {}},
            status=400,
        )
    try:
        clean = experiments.check_events(body)
    except experiments.BadEvents as exc:
        return JsonResponse(
            {"code": exc.code, "message": exc.message, "details": exc.details or {}}, status=400
        )
    return JsonResponse(experiments.ingest(env_id, clean), status=202)
