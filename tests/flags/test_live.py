"""Flag pages, live: ``/ws/flags/<key>/`` against the real ASGI app and the real Redis channel
layer (transactional tests, so that publishing after commit really happens): a snapshot on
connect, the kill switch reaching a connected page at once, plan moves too; outsiders refused."""

from __future__ import annotations

import time

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from flags import actions, plans
from switchyard.asgi import application
from tests import factories
from tests.flags.conftest import make_flag
from tests.releases.live.test_consumers import ORIGIN, signed_in

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("own_channel_layer")]
TIMEOUT = 5


def env_of(message, slug):
    return next(e for e in message["data"]["environments"] if e["environment"] == slug)


def test_the_kill_switch_reaches_a_connected_flag_page_at_once(actor, prod):
    make_flag(actor, prod)
    headers = signed_in(factories.make_persona("viewer", prod))

    async def scenario():
        comm = WebsocketCommunicator(application, "/ws/flags/checkout/", headers=headers)
        connected, _ = await comm.connect(timeout=TIMEOUT)
        assert connected
        first = await comm.receive_json_from(timeout=TIMEOUT)
        assert first["type"] == "flag" and env_of(first, "prod")["serving"] is True
        flag = await database_sync_to_async(actions.flag_by_key)("checkout")
        started = time.perf_counter()
        await database_sync_to_async(actions.kill)(actor, flag, prod, "errors")
        message = await comm.receive_json_from(timeout=TIMEOUT)
        elapsed = time.perf_counter() - started
        prod_now = env_of(message, "prod")
        assert (
            prod_now["killed"] and not prod_now["serving"] and prod_now["kill_reason"] == "errors"
        )
        assert message["data"]["history"][0]["action"] == "flag.kill"
        plan = await database_sync_to_async(plans.start)(
            actor, flag, prod, [{"percent": 5}, {"percent": 100}]
        )
        while True:  # the plan's rollout changes arrive first, then its own move
            message = await comm.receive_json_from(timeout=TIMEOUT)
            if env_of(message, "prod")["plan"]:
                break
        assert env_of(message, "prod")["plan"]["percent"] == 5 and plan.pk
        await comm.disconnect()
        return elapsed

    elapsed = async_to_sync(scenario)()
    assert elapsed < 1.0  # the action's commit to the page's frame (the loaded machine: ~10 ms)
    print(f"kill switch -> connected flag page: {elapsed * 1000:.1f} ms")


def test_outsiders_and_unknown_flags_are_refused(actor, prod):
    make_flag(actor, prod)

    async def close_code(headers, path):
        comm = WebsocketCommunicator(application, path, headers=headers)
        await comm.connect(timeout=TIMEOUT)
        out = await comm.receive_output(timeout=TIMEOUT)
        await comm.disconnect()
        return out.get("code")

    outsider = signed_in(factories.make_persona("outsider"))
    viewer = signed_in(factories.make_persona("viewer", prod))
    assert async_to_sync(close_code)([ORIGIN], "/ws/flags/checkout/") == 4401
    assert async_to_sync(close_code)(outsider, "/ws/flags/checkout/") == 4404
    assert async_to_sync(close_code)(viewer, "/ws/flags/nope/") == 4404
