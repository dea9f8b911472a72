"""The audit export under ASGI is sent page by page, never built whole in memory.

Driven through the real ASGI application (``switchyard.asgi.application``, as uvicorn calls it)
with a real session cookie; the database is real (transactional: the view's queries run on
Django's sync thread, not the test's connection)."""

from __future__ import annotations

import asyncio
import json

import pytest
from asgiref.sync import async_to_sync
from django.test import Client

from releases.actors import Actor
from releases.audit import chain
from releases.web import audit as audit_view

pytestmark = pytest.mark.django_db(transaction=True)

ROWS = 260
CHUNK = 50


def _scope(cookie: str) -> dict:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/audit/export.jsonl",
        "raw_path": b"/audit/export.jsonl",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1"), (b"cookie", cookie.encode())],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }


def test_a_large_export_is_sent_page_by_page_under_asgi(admin, monkeypatch):
    actor = Actor(user=admin, channel="api", via="test")
    for n in range(ROWS):
        chain.record(actor, "test.row", object_type="thing", object_id=str(n), data={"n": n})
    monkeypatch.setattr(audit_view, "EXPORT_CHUNK", CHUNK)
    serialised = []  # rows turned into JSON so far
    real_dict = audit_view.audit_dict

    def counting_dict(a):
        serialised.append(a.pk)
        return real_dict(a)

    monkeypatch.setattr(audit_view, "audit_dict", counting_dict)
    client = Client()
    client.force_login(admin)
    cookie = f"sessionid={client.cookies['sessionid'].value}"

    from switchyard.asgi import application

    messages: list[dict] = []
    rows_read_at_first_body: list[int] = []

    received = []

    async def receive():  # the request, then nothing (the client stays connected)
        if not received:
            received.append(1)
            return {"type": "http.request", "body": b"", "more_body": False}
        await asyncio.Event().wait()

    async def send(message):
        if message["type"] == "http.response.body" and message.get("body"):
            if not rows_read_at_first_body:
                rows_read_at_first_body.append(len(serialised))
        messages.append(message)

    async_to_sync(application)(_scope(cookie), receive, send)

    start = messages[0]
    assert start["type"] == "http.response.start" and start["status"] == 200
    bodies = [m for m in messages if m["type"] == "http.response.body" and m.get("body")]
    # the first page went out before the second was read: nothing waited for the whole export
    assert rows_read_at_first_body == [CHUNK]
    assert len(bodies) >= ROWS // CHUNK
    total = len(serialised)
    assert total >= ROWS
    records = [json.loads(line) for line in b"".join(m["body"] for m in bodies).splitlines()]
    ids = [r["id"] for r in records]
    assert ids == sorted(ids) and len(ids) == len(set(ids)) == total
    assert sum(1 for r in records if r["action"] == "test.row") == ROWS
