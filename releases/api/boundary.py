"""What no request may carry into the database: a NUL character (Postgres refuses it in any text
value, so it would surface as a 500) in the path or the query string. Refused at the door with
400 -- as ``{"code", "message", "details"}`` under ``/api/``, as plain text elsewhere. Bodies are
checked by ``releases.api.auth.StrictJSONParser``; string lengths by each schema's bounds.
"""

from __future__ import annotations

from django.http import HttpResponseBadRequest

from releases.api.auth import json_error

MESSAGE = "The request's path or query string contains a NUL character (%00)."


class RejectNulMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        query = request.META.get("QUERY_STRING", "")
        if (
            "\x00" in request.path
            or "%00" in query
            or any(
                "\x00" in key or any("\x00" in v for v in values)
                for key, values in request.GET.lists()
            )
        ):
            if request.path.startswith("/api/"):
                return json_error(400, "invalid_request", MESSAGE, {"reason": "nul"})
            return HttpResponseBadRequest(MESSAGE, content_type="text/plain")
        return self.get_response(request)
