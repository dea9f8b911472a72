"""The middleware chain under ASGI: every middleware is async-capable, so Django builds it
without adapting any of them (a sync-only one costs every request two thread hand-overs), and
the project's own middleware still does its job through the async path (real Django handler,
real database, Django's AsyncClient)."""

from __future__ import annotations

import logging

import pytest
from asgiref.sync import async_to_sync
from django.core.handlers.asgi import ASGIHandler
from django.db import connection
from django.test import AsyncClient

from tests import factories


class _Adaptations(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record):
        message = record.getMessage()
        if "adapted for middleware" in message:
            self.messages.append(message)


def _adaptations() -> list[str]:
    logger = logging.getLogger("django.request")
    seen, level = _Adaptations(), logger.level
    logger.addHandler(seen)
    logger.setLevel(logging.DEBUG)
    try:
        ASGIHandler().load_middleware(is_async=True)
    finally:
        logger.removeHandler(seen)
        logger.setLevel(level)
    return seen.messages


def test_no_middleware_is_adapted_under_asgi():
    assert _adaptations() == []


def test_the_benchmarks_query_counter_is_not_adapted_either(settings):
    settings.MIDDLEWARE = ["switchyard.querycount.QueryCountMiddleware", *settings.MIDDLEWARE]
    assert _adaptations() == []


@pytest.mark.django_db(transaction=True)
def test_async_chain_sets_security_headers_and_refuses_nul():
    async_to_sync(_headers_and_nul)()


async def _headers_and_nul():
    client = AsyncClient()
    page = await client.get("/login/")
    assert "Content-Security-Policy" in page.headers
    assert page.headers["Permissions-Policy"].startswith("camera=()")
    refused = await client.get("/api/v1/deployments", {"service": "a\x00b"})
    assert refused.status_code == 422
    assert refused.json()["details"]["errors"][0]["path"] == "service"
    plain = await client.get("/login/", {"next": "\x00"})
    assert plain.status_code == 400


@pytest.mark.django_db(transaction=True)
def test_query_counter_counts_the_views_queries(settings):
    """The queries run on the view's thread, the counter lives in the async middleware."""
    user = factories.make_user()
    settings.MIDDLEWARE = ["switchyard.querycount.QueryCountMiddleware", *settings.MIDDLEWARE]
    connection.close()  # the counter is installed as a connection opens (a worker's all do)

    async def run():
        anonymous = await AsyncClient().get("/login/")
        client = AsyncClient()
        await client.aforce_login(user)
        listed = await client.get("/api/v1/deployments")
        return anonymous, listed

    anonymous, listed = async_to_sync(run)()
    assert anonymous.headers["X-Queries"] == "0"
    assert listed.status_code == 200
    # the session, its user, the page of ids (policy checks may add more)
    assert int(listed.headers["X-Queries"]) >= 3
