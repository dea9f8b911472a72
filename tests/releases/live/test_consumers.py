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

from releases import actions
from releases.actors import Actor
from releases.live import charts, consumers, events
from releases.models import DeploymentEvent
from switchyard.asgi import application
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)

ORIGIN = (b"origin", b"http://localhost")
TIMEOUT = 5


@pytest.fixture(autouse=True)
def own_metrics_keys(monkeypatch):
    """Request samples under a key prefix of our own (target ids repeat across test runs)."""
    monkeypatch.setattr(charts, "KEY_PREFIX", f"test-metrics-{uuid.uuid4().hex[:10]}")


@pytest.fixture
def deployer(db, dev):
    return factories.make_persona("deployer", dev)


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


async def next_message(comm) -> dict:
    """The next message relayed or sent: a WebSocket frame holds one, or the messages of one
    change as an array (``releases.live.events``)."""
    pending = comm.__dict__.setdefault("pending", [])
    if not pending:
        frame = await comm.receive_json_from(timeout=TIMEOUT)
        pending.extend(frame if isinstance(frame, list) else [frame])
    return pending.pop(0)


async def receive_until(comm, wanted):
    """The first message ``wanted(message)`` accepts, skipping the others."""
    while True:
        message = await next_message(comm)
        if wanted(message):
            return message


async def connect_and_drain(comm, count: int) -> list[dict]:
    connected, _ = await comm.connect(timeout=TIMEOUT)
    assert connected
    return [await next_message(comm) for _ in range(count)]


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
        comm = communicator("/ws/deployments/2000000000/", headers)  # an id no sequence reaches
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
        first, second, third = await connect_and_drain(comm, 3)
        assert first["type"] == "deployment"
        assert first["data"]["id"] == deployment.pk
        assert first["data"]["state"] == "pending"
        assert second["type"] == "target"
        assert second["data"]["service"] == "api"
        assert third == {
            "type": "metrics",
            "data": {"target": "api.dev", "samples": [], "replace": True},
        }

        await database_sync_to_async(actions.pause)(actor(deployer), deployment.pk)
        paused = await receive_until(comm, lambda m: m["type"] == "deployment")
        assert paused["data"]["state"] == "paused"
        event = await receive_until(comm, lambda m: m["type"] == "event")
        assert event["data"]["message"] == "deployer paused the deployment"
        target = await receive_until(comm, lambda m: m["type"] == "target")
        assert target["data"]["environment"] == "dev"
        await comm.disconnect()

    async_to_sync(scenario)()


def test_a_reconnecting_page_gets_the_events_it_missed(deployer, deployment):
    actions.pause(actor(deployer), deployment.pk)
    actions.resume(actor(deployer), deployment.pk)
    created, paused, resumed = DeploymentEvent.objects.filter(deployment=deployment).order_by("id")

    headers = signed_in(deployer)

    async def scenario():
        path = f"/ws/deployments/{deployment.pk}/?after={created.pk}"
        comm = communicator(path, headers)
        messages = await connect_and_drain(comm, 5)
        assert [m["type"] for m in messages] == [
            "deployment",
            "event",
            "event",
            "target",
            "metrics",
        ]
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
        await connect_and_drain(comm, 3)
        await database_sync_to_async(
            lambda: get_user_model().objects.filter(pk=deployer.pk).update(is_active=False)
        )()
        await database_sync_to_async(actions.pause)(actor(admin), deployment.pk)
        closed = await comm.receive_output(timeout=TIMEOUT)
        assert closed == {"type": "websocket.close", "code": 4401}

    async_to_sync(scenario)()


def test_it_stops_relaying_after_the_user_signs_out(deployer, deployment, monkeypatch):
    monkeypatch.setattr(consumers, "RECHECK_SECONDS", 0.0)
    headers = signed_in(deployer)
    session_key = headers[1][1].decode().split("=", 1)[1]

    async def scenario():
        comm = communicator(f"/ws/deployments/{deployment.pk}/", headers)
        await connect_and_drain(comm, 3)

        def sign_out():
            from django.contrib.sessions.models import Session

            Session.objects.filter(session_key=session_key).delete()

        await database_sync_to_async(sign_out)()
        await database_sync_to_async(actions.pause)(actor(deployer), deployment.pk)
        closed = await comm.receive_output(timeout=TIMEOUT)
        assert closed == {"type": "websocket.close", "code": 4401}

    async_to_sync(scenario)()


def test_tabs_of_one_session_share_a_recheck_and_all_still_close(deployer, deployment, monkeypatch):
    """Many tabs of one session on one deployment re-read the user once per due message, not once
    each (seen in bench/ws.py: a thousand dashboards that connected together all re-read in
    front of the same message, p95 8 s); a deactivated user is still shut out of every tab."""
    monkeypatch.setattr(consumers, "RECHECK_SECONDS", 0.0)
    admin = factories.make_user("admin")
    rechecks = []
    page_refused = consumers.DeploymentConsumer.page_refused

    def counted(self):
        rechecks.append(self.channel_name)
        return page_refused(self)

    monkeypatch.setattr(consumers.DeploymentConsumer, "page_refused", counted)
    headers = signed_in(deployer)

    async def scenario():
        tabs = [communicator(f"/ws/deployments/{deployment.pk}/", headers) for _ in range(5)]
        for tab in tabs:
            await connect_and_drain(tab, 3)
        await database_sync_to_async(actions.pause)(actor(admin), deployment.pk)
        for tab in tabs:
            message = await receive_until(tab, lambda m: m["type"] == "deployment")
            assert message["data"]["state"] == "paused"
        assert len(rechecks) < len(tabs), rechecks  # (5 tabs re-reading on their own: 5)

        await database_sync_to_async(
            lambda: get_user_model().objects.filter(pk=deployer.pk).update(is_active=False)
        )()
        await database_sync_to_async(actions.resume)(actor(admin), deployment.pk)
        for tab in tabs:
            while (out := await tab.receive_output(timeout=TIMEOUT))["type"] != "websocket.close":
                pass
            assert out == {"type": "websocket.close", "code": 4401}

    async_to_sync(scenario)()


def test_a_relayed_message_costs_no_thread_hop(deployer, deployment, monkeypatch):
    """channels (4.2+) runs ``close_old_connections`` on the one thread-sensitive executor before
    every message it dispatches to a consumer: with a thousand dashboards on a deployment, each
    publish queued a thousand thread hops one behind the other (py-spy on bench/ws.py: a quarter
    of the web processes' time while relaying). A relay touches no database connection (its
    recheck runs through ``database_sync_to_async``, which closes old connections itself): the
    process' hub hands it to the consumer without channels' dispatch."""
    hops = []
    monkeypatch.setattr("channels.consumer.aclose_old_connections", _counting(hops))
    headers = signed_in(deployer)
    admin = factories.make_user("admin")

    async def scenario():
        tab = communicator(f"/ws/deployments/{deployment.pk}/", headers)
        await connect_and_drain(tab, 3)
        hops.clear()
        await database_sync_to_async(actions.pause)(actor(admin), deployment.pk)
        message = await receive_until(tab, lambda m: m["type"] == "deployment")
        assert message["data"]["state"] == "paused"
        assert hops == []
        await tab.disconnect()

    async_to_sync(scenario)()


def test_the_messages_of_one_change_arrive_in_one_frame_in_order(deployer, deployment):
    """A publish (the deployment, its new events, its target) is one WebSocket frame holding a
    JSON array, not a frame each: per frame, the server and every browser pay again
    (bench/ws.py, 1,000 dashboards)."""
    admin = factories.make_user("admin")
    headers = signed_in(deployer)

    async def scenario():
        tab = communicator(f"/ws/deployments/{deployment.pk}/", headers)
        await connect_and_drain(tab, 3)
        await database_sync_to_async(actions.pause)(actor(admin), deployment.pk)
        frame = await tab.receive_json_from(timeout=TIMEOUT)
        await tab.disconnect()
        return frame

    frame = async_to_sync(scenario)()
    assert isinstance(frame, list), frame
    kinds = [m["type"] for m in frame]
    assert kinds[0] == "deployment" and kinds[-1] == "target" and "event" in kinds, kinds
    assert frame[0]["data"]["state"] == "paused"


def test_a_process_subscribes_once_per_group_and_hands_each_message_to_every_tab(
    deployer, deployment
):
    """Five tabs on one deployment: the process is one member of the deployment's group (not
    five), each publish is received once and reaches every tab, and the group is left when the
    last tab closes (``releases.live.hub``)."""
    from channels.layers import get_channel_layer

    admin = factories.make_user("admin")
    headers = signed_in(deployer)
    group = events.deployment_group(deployment.pk)

    async def members():
        layer = get_channel_layer()
        connection = layer.connection(layer.consistent_hash(group))
        return await connection.zcard(layer._group_key(group))

    async def scenario():
        tabs = [communicator(f"/ws/deployments/{deployment.pk}/", headers) for _ in range(5)]
        for tab in tabs:
            await connect_and_drain(tab, 3)
        joined = await members()
        await database_sync_to_async(actions.pause)(actor(admin), deployment.pk)
        states = [
            (await receive_until(tab, lambda m: m["type"] == "deployment"))["data"]["state"]
            for tab in tabs
        ]
        for tab in tabs[:-1]:
            await tab.disconnect()
        still = await members()
        await tabs[-1].disconnect()
        return joined, states, still, await members()

    joined, states, still, left = async_to_sync(scenario)()
    assert (joined, still, left) == (1, 1, 0)
    assert states == ["paused"] * 5


def test_pages_reconnect_when_their_group_can_no_longer_be_received(deployer, deployment, caplog):
    """Redis away (and, if it restarts empty, the group with it): the process' subscription
    fails, and each page on it is closed with 1011 -- as channels closes a consumer whose receive
    fails -- so that the browser reconnects, joins anew and reads a fresh snapshot."""
    from channels.layers import get_channel_layer

    from releases.live import hub

    headers = signed_in(deployer)
    admin = factories.make_user("admin")

    async def scenario():
        tab = communicator(f"/ws/deployments/{deployment.pk}/", headers)
        await connect_and_drain(tab, 3)
        layer = get_channel_layer()
        real = layer.receive

        async def away(channel):
            raise ConnectionError("Redis went away")

        layer.receive = away  # the hub's next receive fails
        try:
            await database_sync_to_async(actions.pause)(actor(admin), deployment.pk)
            while (out := await tab.receive_output(timeout=TIMEOUT))["type"] != "websocket.close":
                pass
        finally:
            layer.receive = real
        again = communicator(f"/ws/deployments/{deployment.pk}/", headers)
        snapshot = await connect_and_drain(again, 1)
        await again.disconnect()
        return out, snapshot[0], hub.hub(layer).groups

    out, snapshot, groups = async_to_sync(scenario)()
    assert out == {"type": "websocket.close", "code": 1011}
    assert snapshot["type"] == "deployment" and snapshot["data"]["state"] == "paused"
    assert groups == {}
    assert "closing its 1 connections" in caplog.text


def _counting(hops):
    """channels' ``aclose_old_connections``, counting its calls in ``hops``."""
    from channels.db import aclose_old_connections

    async def counted():
        hops.append(1)
        await aclose_old_connections()

    return counted


# --- the board ----------------------------------------------------------------------------------


def test_the_board_gets_every_cell_then_live_changes(deployer, deployment, prod, service):
    factories.make_target(service, prod)
    factories.grant(deployer, "viewer", prod)

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
            "shipped": None,
            "failed": None,
            "alert": "",
            "runs_on": "",
        }

        await database_sync_to_async(actions.pause)(actor(deployer), deployment.pk)
        cell = await receive_until(comm, lambda m: m["type"] == "board.cell")
        assert cell["data"]["environment"] == "dev"
        assert cell["data"]["deployment"]["state"] == "paused"
        assert cell["data"]["alert"] == "paused: waiting for someone to resume"
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


# --- roles --------------------------------------------------------------------------------------


def test_an_outsider_cannot_listen_to_a_deployment(deployment, prod):
    headers = signed_in(factories.make_persona("viewer", prod))  # a viewer elsewhere

    async def scenario():
        comm = communicator(f"/ws/deployments/{deployment.pk}/", headers)
        connected, _ = await comm.connect(timeout=TIMEOUT)
        assert connected
        closed = await comm.receive_output(timeout=TIMEOUT)
        assert closed == {"type": "websocket.close", "code": 4404}

    async_to_sync(scenario)()


def test_the_board_sends_only_the_cells_the_user_may_see(deployer, deployment, prod, service):
    web = factories.make_service("web")
    factories.make_target(web, prod)
    other = factories.make_deployment(
        factories.make_target(web, factories.make_environment("staging")), "2.0.0"
    )
    headers = signed_in(factories.make_persona("viewer", prod))
    admin = factories.make_user("admin")

    async def scenario():
        comm = communicator("/ws/board/", headers)
        cells = [m["data"] for m in await connect_and_drain(comm, 1)]
        assert [(c["service"], c["environment"]) for c in cells] == [("web", "prod")]
        assert await comm.receive_nothing(timeout=0.2)
        # changes elsewhere are not relayed
        await database_sync_to_async(actions.pause)(actor(admin), deployment.pk)
        await database_sync_to_async(actions.pause)(actor(admin), other.pk)
        assert await comm.receive_nothing(timeout=1)
        await comm.disconnect()

    async_to_sync(scenario)()


# --- request samples ------------------------------------------------------------------------------


def sample(t: float, rps: float = 10.0) -> dict:
    return {
        "t": t,
        "slots": {"blue": {"rps": rps, "error_rate": 0.0, "p95_ms": 5.0, "p99_ms": 9.0}},
    }


def test_a_page_gets_the_metrics_window_on_connect_then_new_samples(deployer, deployment):
    import time

    now = time.time()
    store = charts.Store()
    for t in (now - 20, now - 10, now - 2000):  # the last is older than the window
        store.add(deployment.target_id, sample(t))
    headers = signed_in(deployer)

    async def scenario():
        comm = communicator(f"/ws/deployments/{deployment.pk}/", headers)
        messages = await connect_and_drain(comm, 3)
        window = messages[2]["data"]
        assert window["replace"] is True
        assert [s["t"] for s in window["samples"]] == [now - 20, now - 10]

        await database_sync_to_async(events.publish_metrics)(
            deployment.target_id, "api.dev", [sample(now, rps=42.0)]
        )
        fresh = await receive_until(comm, lambda m: m["type"] == "metrics")
        assert fresh["data"] == {
            "target": "api.dev",
            "samples": [sample(now, 42.0)],
            "replace": False,
        }
        await comm.disconnect()

        # a reconnecting page asks only for what it has not seen
        again = communicator(f"/ws/deployments/{deployment.pk}/?since={now - 15}", headers)
        messages = await connect_and_drain(again, 3)
        assert messages[2]["data"]["replace"] is False
        assert [s["t"] for s in messages[2]["data"]["samples"]] == [now - 10]
        await again.disconnect()

    async_to_sync(scenario)()
