"""An idle live page stays connected: a WebSocket to uvicorn, over this session's real Redis
channel layer, open and silent for 30 s, is neither closed nor logged as a Redis timeout.

redis-py 8 reads with a 5 s socket timeout by default, while channels-redis blocks on BZPOPMIN for
5 s: unless the channel layer's socket timeout outlasts the blocking pop, every idle consumer's read
times out and the connection drops (switchyard/settings.py, CHANNEL_LAYERS).
"""

from __future__ import annotations

import json
import os

import pytest
from django.conf import settings
from django.test import Client
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from integrations.local.ports import free_port
from switchyard import processes
from tests import factories
from tests.stack import child_database_url

pytestmark = pytest.mark.e2e

IDLE_SECONDS = 30


@pytest.fixture
def web(transactional_db, tmp_path):
    env = dict(os.environ)
    env.update(
        DATABASE_URL=child_database_url(),
        REDIS_URL=settings.REDIS_URL,
        SECRET_KEY=settings.SECRET_KEY,
        ALLOWED_HOSTS="127.0.0.1,localhost",
    )
    port = free_port()
    supervisor = processes.Supervisor(env=env, log_dir=tmp_path)
    supervisor.start("web", processes.web_command(port))
    try:
        processes.wait_http(f"http://127.0.0.1:{port}/login/", timeout=30)
        yield port, tmp_path / "web.log"
    finally:
        supervisor.stop()


def test_an_idle_board_socket_stays_open_for_30_seconds(web):
    port, log = web
    client = Client()
    client.force_login(factories.make_user("alice"))
    factories.make_target(factories.make_service("api"), factories.make_environment("dev"))
    cookie = f"sessionid={client.cookies['sessionid'].value}"
    with connect(
        f"ws://127.0.0.1:{port}/ws/board/",
        additional_headers={"Cookie": cookie, "Origin": f"http://127.0.0.1:{port}"},
        open_timeout=10,
    ) as ws:
        first = json.loads(ws.recv(timeout=10))  # the snapshot says the page is live
        assert first["type"] == "board.cell"
        while True:  # drain the rest of the snapshot
            try:
                ws.recv(timeout=1)
            except TimeoutError:
                break
        try:
            ws.recv(timeout=IDLE_SECONDS)
        except TimeoutError:
            pass  # nothing happened for 30 s and the socket is still open: what we want
        except ConnectionClosed as closed:
            pytest.fail(f"the idle socket was closed ({closed}); web log: {log}")
        ws.ping().wait(timeout=5)  # and it still answers
    text = log.read_text() if log.exists() else ""
    assert "Timeout reading from" not in text, text[-2000:]
