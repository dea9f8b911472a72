"""What no request may carry into the database: a NUL character (Postgres refuses it in any text
value, so it would surface as a 500) in the path or the query string. Refused at the door: 422
naming the parameter under ``/api/`` (``{"code", "message", "details"}``, as for any bad
parameter), 400 as plain text elsewhere. Bodies are checked by
``releases.api.auth.StrictJSONParser``; string lengths by each schema's bounds.
"""

from __future__ import annotations

from django.http import HttpResponseBadRequest

from releases.api.auth import json_error

MESSAGE = "The request's path or query string contains a NUL character (%00)."
NUL = "\x00"


def nul_in(request) -> str | None:
    """Where a NUL is (``path``, or a query parameter's name), or None."""
    if NUL in request.path:
        return "path"
    for key, values in request.GET.lists():
        if NUL in key or any(NUL in v for v in values):
            return key.replace(NUL, "\\x00")
    return None


class RejectNulMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        where = nul_in(request)
        if where is None:
            return self.get_response(request)
        if request.path.startswith("/api/"):
            errors = [{"path": where, "message": "contains a NUL character"}]
            return json_error(422, "invalid_request", MESSAGE, {"errors": errors})
        return HttpResponseBadRequest(MESSAGE, content_type="text/plain")
