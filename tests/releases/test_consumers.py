"""The WebSocket consumers, against the real ASGI app and the real Redis channel layer.

The tests are transactional so that ``transaction.on_commit`` publishing really happens. Each
scenario is a coroutine run with ``async_to_sync`` (no pytest-asyncio needed): the consumer's
database calls and the commands called through ``database_sync_to_async`` then share the test's
thread and connection.
"""

from __future__ import annotations

import uuid

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.test import Client

from releases import commands, consumers
from releases.actors import Actor
from releases.models import DeploymentEvent
from switchyard.asgi import application
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)

ORIGIN = (b"origin", b"http://localhost")
TIMEOUT = 5


@pytest.fixture(autouse=True)
def own_channel_layer(settings):
    """A channel layer prefix of our own, so that concurrent test runs sharing this Redis
    database never hear each other's ``deployment.<id>`` groups."""
    layer = dict(django_settings.CHANNEL_LAYERS["default"])
    layer["CONFIG"] = {**layer["CONFIG"], "prefix": f"test-{uuid.uuid4().hex[:10]}"}
    settings.CHANNEL_LAYERS = {"default": layer}


@pytest.fixture
def deployer(db):
    return factories.make_user("deployer", superuser=False)


@pytest.fixture
def deployment(target):
    return factories.make_deployment(target, "1.0.0")


def signed_in(user) -> list[tuple[bytes, bytes]]:
    client = Client()
    client.force_login(user)
    cookie = client.cookies[django_settings.SESSION_COOKIE_NAME]
    return [ORIGIN, (b"cookie", f"{cookie.key}={cookie.value}".encode())]


def communicator(path: str, headers) -> WebsocketCommunicator:
    return WebsocketCommunicator(application, path, headers=headers)


async def receive_until(comm, wanted):
    """The first message ``wanted(message)`` accepts, skipping the others."""
    while True:
        message = await comm.receive_json_from(timeout=TIMEOUT)
        if wanted(message):
            return message


async def connect_and_drain(comm, count: int) -> list[dict]:
    connected, _ = await comm.connect(timeout=TIMEOUT)
    assert connected
    return [await comm.receive_json_from(timeout=TIMEOUT) for _ in range(count)]


def actor(user):
    return Actor(user=user, channel="ui")


# --- who may listen ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/ws/board/", "/ws/deployments/1/"])
def test_it_closes_anonymous_connections_with_4401(path):
    async def scenario():
        comm = communicator(path, [ORIGIN])
        connected, _ = await comm.connect(timeout=TIMEOUT)
        assert connected  # accepted, so that the browser sees the close code
        closed = await comm.receive_output(timeout=TIMEOUT)
        assert closed == {"type": "websocket.close", "code": 4401}

    async_to_sync(scenario)()


def test_it_refuses_a_foreign_origin(deployer):
    headers = [h for h in signed_in(deployer) if h[0] != b"origin"]

    async def scenario():
        comm = communicator("/ws/board/", [*headers, (b"origin", b"http://evil.example")])
        connected, _ = await comm.connect(timeout=TIMEOUT)
        assert not connected

    async_to_sync(scenario)()


def test_it_closes_with_4404_for_an_unknown_deployment(deployer):
    headers = signed_in(deployer)

    async def scenario():
        comm = communicator("/ws/deployments/999999/", headers)
        connected, _ = await comm.connect(timeout=TIMEOUT)
        assert connected
        closed = await comm.receive_output(timeout=TIMEOUT)
        assert closed == {"type": "websocket.close", "code": 4404}

    async_to_sync(scenario)()


# --- the deployment page ------------------------------------------------------------------------


def test_the_deployment_page_gets_a_snapshot_then_live_changes(deployer, deployment):
    headers = signed_in(deployer)

    async def scenario():
        comm = communicator(f"/ws/deployments/{deployment.pk}/", headers)
        first, second = await connect_and_drain(comm, 2)
        assert first["type"] == "deployment"
        assert first["data"]["id"] == deployment.pk
        assert first["data"]["state"] == "pending"
        assert second["type"] == "target"
        assert second["data"]["service"] == "api"

        await database_sync_to_async(commands.pause)(actor(deployer), deployment.pk)
        paused = await receive_until(comm, lambda m: m["type"] == "deployment")
        assert paused["data"]["state"] == "paused"
        event = await receive_until(comm, lambda m: m["type"] == "event")
        assert event["data"]["message"] == "deployer paused the deployment"
        target = await receive_until(comm, lambda m: m["type"] == "target")
        assert target["data"]["environment"] == "dev"
        await comm.disconnect()

    async_to_sync(scenario)()


def test_a_reconnecting_page_gets_the_events_it_missed(deployer, deployment):
    commands.pause(actor(deployer), deployment.pk)
    commands.resume(actor(deployer), deployment.pk)
    created, paused, resumed = DeploymentEvent.objects.filter(deployment=deployment).order_by("id")

    headers = signed_in(deployer)

    async def scenario():
        path = f"/ws/deployments/{deployment.pk}/?after={created.pk}"
        comm = communicator(path, headers)
        messages = await connect_and_drain(comm, 4)
        assert [m["type"] for m in messages] == ["deployment", "event", "event", "target"]
        assert messages[0]["data"]["state"] == "progressing"
        assert [m["data"]["id"] for m in messages[1:3]] == [paused.pk, resumed.pk]
        assert await comm.receive_nothing(timeout=0.2)
        await comm.disconnect()

    async_to_sync(scenario)()


def test_it_stops_relaying_to_a_user_who_was_deactivated(deployer, deployment, monkeypatch):
    monkeypatch.setattr(consumers, "RECHECK_SECONDS", 0.0)
    admin = factories.make_user("admin")

    headers = signed_in(deployer)

    async def scenario():
        comm = communicator(f"/ws/deployments/{deployment.pk}/", headers)
        await connect_and_drain(comm, 2)
        await database_sync_to_async(
            lambda: get_user_model().objects.filter(pk=deployer.pk).update(is_active=False)
        )()
        await database_sync_to_async(commands.pause)(actor(admin), deployment.pk)
        closed = await comm.receive_output(timeout=TIMEOUT)
        assert closed == {"type": "websocket.close", "code": 4401}

    async_to_sync(scenario)()


def test_it_stops_relaying_after_the_user_signs_out(deployer, deployment, monkeypatch):
    monkeypatch.setattr(consumers, "RECHECK_SECONDS", 0.0)
    headers = signed_in(deployer)
    session_key = headers[1][1].decode().split("=", 1)[1]

    async def scenario():
        comm = communicator(f"/ws/deployments/{deployment.pk}/", headers)
        await connect_and_drain(comm, 2)

        def sign_out():
            from django.contrib.sessions.models import Session

            Session.objects.filter(session_key=session_key).delete()

        await database_sync_to_async(sign_out)()
        await database_sync_to_async(commands.pause)(actor(deployer), deployment.pk)
        closed = await comm.receive_output(timeout=TIMEOUT)
        assert closed == {"type": "websocket.close", "code": 4401}

    async_to_sync(scenario)()


# --- the board ----------------------------------------------------------------------------------


def test_the_board_gets_every_cell_then_live_changes(deployer, deployment, prod, service):
    factories.make_target(service, prod)

    headers = signed_in(deployer)

    async def scenario():
        comm = communicator("/ws/board/", headers)
        cells = [m["data"] for m in await connect_and_drain(comm, 2)]
        by_key = {(c["service"], c["environment"]): c for c in cells}
        assert by_key[("api", "dev")]["deployment"]["id"] == deployment.pk
        assert by_key[("api", "prod")] == {
            "service": "api",
            "environment": "prod",
            "version": None,
            "deployment": None,
        }

        await database_sync_to_async(commands.pause)(actor(deployer), deployment.pk)
        cell = await receive_until(comm, lambda m: m["type"] == "board.cell")
        assert cell["data"]["environment"] == "dev"
        assert cell["data"]["deployment"]["state"] == "paused"
        await comm.disconnect()

    async_to_sync(scenario)()


def test_the_board_ignores_what_the_browser_sends(deployer):
    headers = signed_in(deployer)

    async def scenario():
        comm = communicator("/ws/board/", headers)
        connected, _ = await comm.connect(timeout=TIMEOUT)
        assert connected
        await comm.send_to(text_data="not json at all")
        assert await comm.receive_nothing(timeout=0.2)
        await comm.disconnect()

    async_to_sync(scenario)()
