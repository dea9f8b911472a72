"""What no request may carry into the database: a NUL character (Postgres refuses it in any text
value, so it would surface as a 500) in the path or the query string. Refused at the door: 422
naming the parameter under ``/api/`` (``{"code", "message", "details"}``, as for any bad
parameter), 400 as plain text elsewhere. Bodies are checked by
``releases.api.auth.StrictJSONParser``; string lengths by each schema's bounds.
"""

from __future__ import annotations

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
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


def _refusal(request, where: str):
    if request.path.startswith("/api/"):
        errors = [{"path": where, "message": "contains a NUL character"}]
        return json_error(422, "invalid_request", MESSAGE, {"errors": errors})
    return HttpResponseBadRequest(MESSAGE, content_type="text/plain")


class RejectNulMiddleware:
    """Sync and async alike: a sync-only middleware in an ASGI chain costs every request two
    thread hand-overs (the chain is adapted around it), which was most of a GET's server CPU."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def __call__(self, request):
        if iscoroutinefunction(self):
            return self._acall(request)
        where = nul_in(request)
        if where is None:
            return self.get_response(request)
        return _refusal(request, where)

    async def _acall(self, request):
        where = nul_in(request)
        if where is None:
            return await self.get_response(request)
        return _refusal(request, where)
