"""A response header with the number of SQL queries a request made (``X-Queries``), for the
benchmarks only: ``bench/api.py`` sets ``SWITCHYARD_COUNT_QUERIES=true`` on the web server it
starts. Off by default (the middleware is not installed), so production pays nothing for it.

Counted server-side by an ``execute_wrapper`` on every connection (installed when it connects)
that adds to a per-request counter in a context variable. The middleware is async-capable, like
the rest of the chain: a sync-only one at its top made every benchmarked request hop threads
twice more than production does (and the view's thread, not the middleware's, runs the
queries; the context variable follows the request across that hop).
"""

from __future__ import annotations

from contextvars import ContextVar

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.db.backends.signals import connection_created

HEADER = "X-Queries"
_count: ContextVar[list[int] | None] = ContextVar("switchyard_query_count", default=None)


def _counting(execute, sql, params, many, context):
    count = _count.get()
    if count is not None:
        count[0] += 1
    return execute(sql, params, many, context)


def _install(sender, connection, **kwargs):
    if _counting not in connection.execute_wrappers:
        connection.execute_wrappers.append(_counting)


class QueryCountMiddleware:
    sync_capable = True
    async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        connection_created.connect(_install, dispatch_uid="switchyard.querycount")
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def __call__(self, request):
        if iscoroutinefunction(self):
            return self._acall(request)
        count = [0]
        token = _count.set(count)
        try:
            response = self.get_response(request)
        finally:
            _count.reset(token)
        response[HEADER] = str(count[0])
        return response

    async def _acall(self, request):
        count = [0]
        token = _count.set(count)
        try:
            response = await self.get_response(request)
        finally:
            _count.reset(token)
        response[HEADER] = str(count[0])
        return response
