"""When Postgres refuses a connection (every connection slot taken, the pool's wait run out, the
server restarting), the API answers 503 ``unavailable`` with a Retry-After -- a JSON error the
client can retry on -- not a 500 that reads as a bug. Seen when tried: ``bench/api.py`` past the
pool's size answered 500 ``internal_error``.

Real Postgres refuses here: a role with ``CONNECTION LIMIT 0`` is turned away at connect with
"too many connections for role", the same OperationalError as a full server, and the request is
served in a thread whose connection logs in as that role."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections
from django.test import Client

from releases.governance import tokens

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="a Postgres role refuses here"),
]

ROLE = "switchyard_no_slots"


@pytest.fixture
def refusing_role():
    with connection.cursor() as cur:
        cur.execute(f"DROP ROLE IF EXISTS {ROLE}")
        cur.execute(f"CREATE ROLE {ROLE} LOGIN CONNECTION LIMIT 0")
    yield ROLE
    with connection.cursor() as cur:
        cur.execute(f"DROP ROLE IF EXISTS {ROLE}")


def _request_as(role: str, path: str, token: str) -> dict:
    seen: dict = {}

    def run():
        conn = connections["default"]
        conn.settings_dict = {**conn.settings_dict, "USER": role}
        try:
            response = Client().get(path, headers={"Authorization": f"Bearer {token}"})
            seen["status"] = response.status_code
            seen["body"] = response.json()
            seen["retry_after"] = response.headers.get("Retry-After")
        finally:
            conn.close()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(30)
    return seen


def test_a_refused_database_connection_is_a_503_to_retry_not_a_500(admin, refusing_role):
    token = tokens.create(admin, "ci")[1]
    for path in ("/api/v1/deployments", "/api/v1/flags"):
        seen = _request_as(refusing_role, path, token)
        assert seen["status"] == 503, (path, seen)
        assert seen["body"]["code"] == "unavailable"
        assert "database" in seen["body"]["message"]
        assert seen["retry_after"] == "1"


def test_the_openapi_documents_list_the_503(client):
    for url in ("/api/v1/openapi.json", "/api/v1/flags/openapi.json"):
        for ops in client.get(url).json()["paths"].values():
            for op in ops.values():
                assert "503" in op["responses"], (url, op.get("operationId"))
