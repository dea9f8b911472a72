"""Unleash's frontend API (``/api/frontend``), as ``unleash-proxy-client`` calls it (GET with the
context in the query, ``properties[name]=value``; or POST with the context as the body; an ETag
and 304). Unleash's frontend SDKs are JavaScript, which this machine cannot run: the requests
are built here the way that client builds them, and the answers checked against the server's
own evaluation on generated contexts."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from flags import actions, state
from flags.engine import evaluate
from tests.flags import generated
from tests.flags.conftest import load_generated, make_flag

pytestmark = pytest.mark.django_db


def query_of(context: dict) -> dict:
    """The query string ``unleash-proxy-client`` sends for a context."""
    query = {k: v for k, v in context.items() if k != "properties"}
    for name, value in (context.get("properties") or {}).items():
        query[f"properties[{name}]"] = value
    return query


def test_the_frontend_api_serves_what_is_on_for_each_context(actor, prod, sdk_token):
    load_generated(actor, prod, seed=9, features=20)
    snapshot = state.current(prod.pk)
    client = Client(headers={"Authorization": sdk_token})
    for context in generated.contexts(seed=5, count=150):
        answer = client.get("/api/frontend", query_of(context))
        assert answer.status_code == 200
        toggles = {t["name"]: t for t in answer.json()["toggles"]}
        expected = {**context, "remoteAddress": context.get("remoteAddress", "127.0.0.1")}
        for name in snapshot.compiled.names():
            ours = evaluate(snapshot.compiled, name, expected)
            assert (name in toggles) is ours.enabled, (name, context)
            if ours.enabled:
                assert toggles[name]["variant"]["name"] == ours.variant_name
                assert toggles[name]["variant"]["feature_enabled"] is True
                assert toggles[name]["enabled"] is True


def test_post_takes_the_context_as_the_body_and_304_follows_the_etag(
    actor, prod, sdk_token, django_capture_on_commit_callbacks
):
    flag = make_flag(
        actor,
        prod,
        strategies=[{"name": "userWithId", "parameters": {"userIds": "ann"}}],
        variants=[{"name": "blue", "payload": {"type": "string", "value": "#00f"}}],
    )
    client = Client(headers={"Authorization": sdk_token})
    ann = client.post(
        "/api/frontend",
        json.dumps({"userId": "ann", "properties": {"plan": "gold"}}),
        content_type="application/json",
    )
    assert ann.status_code == 200
    [toggle] = ann.json()["toggles"]
    assert toggle["variant"] == {
        "name": "blue",
        "enabled": True,
        "payload": {"type": "string", "value": "#00f"},
        "feature_enabled": True,
    }
    bob = client.get("/api/frontend", {"userId": "bob"})
    assert bob.json() == {"toggles": []}  # what is off is not shown
    etag = ann["ETag"]
    again = client.get("/api/frontend", {"userId": "ann"}, headers={"If-None-Match": etag})
    assert again.status_code == 304
    with django_capture_on_commit_callbacks(execute=True):  # the cached document is dropped
        actions.kill(actor, flag, prod, "bad")
    after = client.get("/api/frontend", {"userId": "ann"}, headers={"If-None-Match": etag})
    assert after.status_code == 200 and after.json() == {"toggles": []}


def test_frontend_errors_are_json_4xx(prod, sdk_token):
    client = Client(headers={"Authorization": sdk_token})
    assert Client().get("/api/frontend").status_code == 401
    bad = client.post("/api/frontend", "[1, 2]", content_type="application/json")
    assert bad.status_code == 400 and bad.json()["code"] == "invalid_request"
    assert client.put("/api/frontend").status_code == 405
    metrics = client.post(
        "/api/frontend/client/metrics",
        json.dumps({"bucket": {"start": "x", "stop": "y", "toggles": {}}}),
        content_type="application/json",
    )
    assert metrics.status_code == 202
    register = client.post(
        "/api/frontend/client/register",
        json.dumps({"appName": "web", "instanceId": "browser"}),
        content_type="application/json",
    )
    assert register.status_code == 202
