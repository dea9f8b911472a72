"""The OpenAPI document tells the truth: each operation lists the error responses it really
gives -- 422 (our own validation error) wherever it takes input, never 402 or 418 -- and the
API validates as strictly as the document says: a boolean is not an integer, nor a number in a
string, nor 1 a boolean."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from releases.governance import tokens
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def schema(db):
    return Client().get("/api/v1/openapi.json").json()


def operations(schema):
    for path, ops in schema["paths"].items():
        for method, op in ops.items():
            yield method.upper(), path, op


def test_no_operation_lists_codes_it_never_gives(schema):
    never = {"402", "405", "406", "407", "408", "410", "411", "412", "416", "418", "425", "451"}
    listed = {(m, p): set(op["responses"]) & never for m, p, op in operations(schema)}

    assert {k: v for k, v in listed.items() if v} == {}


def test_every_operation_with_input_documents_422_and_each_error_has_the_error_shape(schema):
    for method, path, op in operations(schema):
        takes_input = bool(op.get("parameters")) or "requestBody" in op
        assert ("422" in op["responses"]) is takes_input, (method, path)
        assert "401" in op["responses"], (method, path)
        for code, response in op["responses"].items():
            if code.startswith("4"):
                ref = response["content"]["application/json"]["schema"]["$ref"]
                assert ref.endswith("/ErrorOut"), (method, path, code)


@pytest.mark.parametrize(
    "method,path,codes",
    [
        ("GET", "/api/v1/services", {"401"}),
        ("GET", "/api/v1/deployments/{id}", {"401", "404", "422"}),
        ("POST", "/api/v1/deployments", {"400", "401", "403", "404", "409", "413", "422"}),
        ("POST", "/api/v1/deployments/{id}/pause", {"401", "403", "404", "409", "422"}),
        ("POST", "/api/v1/strategies/validate", {"400", "401", "413", "422"}),
        ("POST", "/api/v1/services", {"400", "401", "403", "409", "413", "422"}),
        # the body names a channel / a user that must exist; a name or a Slack user taken
        ("POST", "/api/v1/notifications/rules", {"400", "401", "403", "404", "413", "422"}),
        (
            "POST",
            "/api/v1/notifications/slack-links",
            {"400", "401", "403", "404", "409", "413", "422"},
        ),
        ("POST", "/api/v1/notifications/channels", {"400", "401", "403", "409", "413", "422"}),
        (
            "POST",
            "/api/v1/notifications/channels/{channel_id}/test",
            {"401", "403", "404", "409", "422"},
        ),
    ],
)
def test_the_error_codes_of_some_operations(schema, method, path, codes):
    op = schema["paths"][path][method.lower()]

    assert {c for c in op["responses"] if c[0] == "4"} == codes


# --- strict validation ----------------------------------------------------------------------------


@pytest.fixture
def token(admin, dev):
    return tokens.create(admin, "strict")[1]


def send(method, path, body, token):
    return Client().generic(
        method,
        "/api/v1" + path,
        data=json.dumps(body),
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}"},
    )


@pytest.mark.parametrize("value", [False, True, "3", 3.5])
def test_an_integer_field_takes_only_integers(token, value):
    response = send("PATCH", "/environments/dev", {"order": value}, token)

    assert response.status_code == 422, response.content
    assert response.json()["details"]["errors"][0]["path"] == "order"


def test_a_list_of_integers_takes_no_booleans(token):
    response = send("PUT", "/environments/dev/policy", {"step_approvals": [False]}, token)

    assert response.status_code == 422, response.content
    assert response.json()["details"]["errors"][0]["path"].startswith("step_approvals")


@pytest.mark.parametrize("value", [1, 0, "true", "yes"])
def test_a_boolean_field_takes_only_booleans(token, value):
    response = send("PUT", "/environments/dev/policy", {"allow_self_approval": value}, token)

    assert response.status_code == 422, response.content
    assert response.json()["details"]["errors"][0]["path"] == "allow_self_approval"


@pytest.mark.parametrize(
    "field,value",
    [
        ("starts_at", 0),
        ("starts_at", 1893456000),  # the same moment as the string it replaces, as a Unix time
        ("starts_at", 1.5),
        ("starts_at", True),
        ("ends_at", 1893542400),
        ("ends_at", 1.9e9),
    ],
)
def test_a_date_time_field_takes_only_a_string(token, dev, field, value):
    """schemathesis found ``"starts_at": 0`` stored as 1970-01-01 (pydantic reads a number as
    a Unix time); the document says a date-time string."""
    freeze = {"name": "n", "environment": "dev", "reason": "r", "kind": "one_off",
              "starts_at": "2030-01-01T00:00:00Z", "ends_at": "2030-01-02T00:00:00Z"}  # fmt: skip
    response = send("POST", "/freezes", {**freeze, field: value}, token)

    assert response.status_code == 422, response.content
    assert response.json()["details"]["errors"][0]["path"] == field


def test_well_typed_values_still_pass(token, dev):
    assert send("PATCH", "/environments/dev", {"order": 5}, token).status_code == 200
    assert send("PATCH", "/environments/dev", {"order": 6.0}, token).json()["order"] == 6
    policy = {"step_approvals": [1], "allow_self_approval": True, "approval_ttl_seconds": 3600}
    assert send("PUT", "/environments/dev/policy", policy, token).status_code == 200
    freeze = {"name": "n", "environment": "dev", "reason": "r", "kind": "one_off",
              "starts_at": "2030-01-01T00:00:00Z", "ends_at": "2030-01-02T00:00:00Z"}  # fmt: skip
    assert send("POST", "/freezes", freeze, token).status_code == 201
    factories.make_service("api")
    assert send("POST", "/services/api/releases", {"version": "1.0.0"}, token).status_code == 201


def test_a_nul_in_a_parameter_is_a_422_naming_it(token):
    response = Client().get(
        "/api/v1/deployments?service=a%00b", headers={"Authorization": f"Bearer {token}"}
    )

    assert response.status_code == 422
    assert response.json()["details"]["errors"] == [
        {"path": "service", "message": "contains a NUL character"}
    ]
