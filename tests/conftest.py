"""Shared fixtures. Tests run on real Postgres and Redis when DATABASE_URL / REDIS_URL point at
them (CI does); otherwise on the embedded default (SQLite file, Redis started here)."""

from __future__ import annotations

import os
import uuid

import pytest
from django.conf import settings

from tests import factories

pytest_plugins = ["tests.audit_flush"]  # transactional tests may empty the append-only trail


@pytest.fixture(scope="session", autouse=True)
def redis_server():
    """Start the embedded Redis when no REDIS_URL is configured; empty the test Redis db."""
    embedded = None
    if settings.REDIS_EMBEDDED:
        from switchyard.embedded_redis import EmbeddedRedis

        embedded = EmbeddedRedis(settings.EMBEDDED_REDIS_SOCKET).start()
    import redis

    client = redis.Redis.from_url(settings.REDIS_URL)
    if embedded is not None or os.environ.get("SWITCHYARD_TEST_FLUSH_REDIS") == "1":
        client.flushdb()
    yield settings.REDIS_URL
    if embedded is not None:
        embedded.stop()


@pytest.fixture
def own_channel_layer(settings):
    """A channel layer prefix of our own, so that concurrent test runs sharing one Redis database
    never hear each other's groups (``deployment.<id>``, the board, flag pages)."""
    layer = dict(settings.CHANNEL_LAYERS["default"])
    layer["CONFIG"] = {**layer["CONFIG"], "prefix": f"test-{uuid.uuid4().hex[:10]}"}
    settings.CHANNEL_LAYERS = {"default": layer}


@pytest.fixture
def admin(db):
    return factories.make_user("admin", superuser=True)


@pytest.fixture
def service(db):
    return factories.make_service("api")


@pytest.fixture
def dev(db):
    return factories.make_environment("dev")


@pytest.fixture
def prod(db):
    return factories.make_environment("prod")


@pytest.fixture
def target(service, dev):
    return factories.make_target(service, dev)
