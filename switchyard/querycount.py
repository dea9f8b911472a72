"""A response header with the number of SQL queries a request made (``X-Queries``), for the
benchmarks only: ``bench/api.py`` sets ``SWITCHYARD_COUNT_QUERIES=true`` on the web server it
starts. Off by default (the middleware is not installed), so production pays nothing for it.

Counted server-side, with ``connection.execute_wrapper`` around the whole view; under ASGI the
sync middleware chain and the view run on the same thread, so they share the connection.
"""

from __future__ import annotations

from django.db import connection

HEADER = "X-Queries"


class QueryCountMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        count = [0]

        def counting(execute, sql, params, many, context):
            count[0] += 1
            return execute(sql, params, many, context)

        with connection.execute_wrapper(counting):
            response = self.get_response(request)
        response[HEADER] = str(count[0])
        return response
