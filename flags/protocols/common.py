"""What both protocols share: reading the SDK token and a JSON body."""

from __future__ import annotations

import hashlib
import json

from django.http import HttpResponse, JsonResponse

from flags import sdk

MAX_BODY = 256 * 1024


def environment_or_401(request):
    """(environment id, None) or (None, a 401 response)."""
    try:
        return sdk.verify(sdk.token_from(request)), None
    except sdk.SdkTokenRefused as exc:
        return None, JsonResponse(
            {"code": exc.code, "message": exc.message, "details": {}}, status=401
        )


def json_body(request):
    """The decoded body (None for an empty one); ValueError when it is not JSON."""
    raw = request.body[: MAX_BODY + 1]
    if len(raw) > MAX_BODY:
        raise ValueError("the body is larger than 256 KiB")
    if not raw.strip():
        return None
    return json.loads(raw)


def etag_answer(request, body: bytes) -> HttpResponse:
    """``body`` as JSON with an ``ETag`` over it; 304 when ``If-None-Match`` already has it."""
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    if request.headers.get("If-None-Match") == etag:
        response = HttpResponse(status=304)
    else:
        response = HttpResponse(body, content_type="application/json")
    response["ETag"] = etag
    return response
