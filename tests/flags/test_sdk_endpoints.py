"""The SDK endpoints in-process (Django's test client): what each request costs in queries, and
that revoked tokens and malformed bodies get clear 4xx answers."""

from __future__ import annotations

import json

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from flags import sdk, state
from tests import factories
from tests.flags.conftest import make_flag

pytestmark = pytest.mark.django_db


def post(path, body, token):
    return Client().post(
        path, json.dumps(body), content_type="application/json", headers={"Authorization": token}
    )


def test_a_warm_evaluation_makes_no_query_and_a_cold_one_a_few(actor, prod, sdk_token):
    make_flag(actor, prod)
    state.forget()
    sdk.flush_if_due(force=True)  # counts are written every few seconds, not now
    with CaptureQueriesContext(connection) as cold:
        assert post("/ofrep/v1/evaluate/flags/checkout", {}, sdk_token).status_code == 200
    with CaptureQueriesContext(connection) as warm:
        assert post("/ofrep/v1/evaluate/flags/checkout", {}, sdk_token).status_code == 200
    assert (
        len(cold.captured_queries) <= 6
    )  # token (+ last use), revision, flags, settings, segments
    assert len(warm.captured_queries) == 0


def test_a_revoked_token_is_refused(actor, prod):
    row, token = sdk.create_token(actor, prod, "short-lived")
    sdk.revoke_token(actor, row.prefix)
    sdk._verified.clear()  # as after the recheck interval
    answer = post("/ofrep/v1/evaluate/flags/x", {}, token)
    assert answer.status_code == 401 and "revoked" in answer.json()["message"]


def test_revoking_a_token_needs_an_admin_of_its_environment(actor, prod):
    row, _ = sdk.create_token(actor, prod, "kept")
    deployer = factories.api_actor(factories.make_persona("deployer", prod))
    with pytest.raises(Exception, match="admin role"):
        sdk.revoke_token(deployer, row.prefix)


@pytest.mark.parametrize(
    "body",
    [b"[1, 2]", b'{"bucket": {"toggles": {"checkout": {"yes": "many"}}}}', b"{not json"],
)
def test_malformed_metrics_are_400(actor, prod, sdk_token, body):
    make_flag(actor, prod)
    answer = Client().post(
        "/api/client/metrics",
        body,
        content_type="application/json",
        headers={"Authorization": sdk_token},
    )
    assert answer.status_code == 400 and answer.json()["code"] == "invalid_request"


def test_register_records_the_sdk_instance(actor, prod, sdk_token):
    body = {
        "appName": "shop",
        "instanceId": "pod-1",
        "sdkVersion": "unleash-python-sdk:6.9.1",
        "strategies": ["default", "flexibleRollout"],
        "interval": 15000,
        "started": "2026-12-01T10:00:00Z",
    }
    assert post("/api/client/register", body, sdk_token).status_code == 202
    from flags.models import SdkInstance

    instance = SdkInstance.objects.get()
    assert (instance.app_name, instance.interval_ms) == ("shop", 15000)
