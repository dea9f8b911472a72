"""The flags API's OpenAPI document lists the errors its operations really give (schemathesis
found every one of them answering 401, 404, 422 ... while the document listed only the 2xx), in
the releases API's error shape."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from releases.governance import tokens
from tests.flags.conftest import make_flag

pytestmark = pytest.mark.django_db


@pytest.fixture
def schema(db):
    return Client().get("/api/v1/flags/openapi.json").json()


def codes(schema, method, path):
    return {
        c for c in schema["paths"][f"/api/v1{path}"][method.lower()]["responses"] if c[0] == "4"
    }


@pytest.mark.parametrize(
    "method,path,expected",
    [
        # people with no role anywhere get 404 from every operation (flags.governance)
        ("GET", "/flags", {"401", "404"}),
        ("GET", "/flags/{key}", {"401", "404", "422"}),
        ("POST", "/flags", {"400", "401", "403", "404", "409", "413", "422"}),
        (
            "PUT",
            "/flags/{key}/environments/{env}",
            {"400", "401", "403", "404", "409", "413", "422"},
        ),
        ("POST", "/flags/{key}/environments/{env}/restore", {"401", "403", "404", "409", "422"}),
        ("PUT", "/segments/{name}", {"400", "401", "403", "404", "413", "422"}),
        ("POST", "/sdk-tokens", {"400", "401", "403", "404", "413", "422"}),
    ],
)
def test_each_operation_lists_the_errors_it_gives(schema, method, path, expected):
    assert codes(schema, method, path) == expected


def test_every_error_has_the_error_shape(schema):
    assert "ErrorOut" in schema["components"]["schemas"]
    for ops in schema["paths"].values():
        for op in ops.values():
            for code, response in op["responses"].items():
                if code[0] == "4":
                    ref = response["content"]["application/json"]["schema"]["$ref"]
                    assert ref == "#/components/schemas/ErrorOut"


@pytest.mark.parametrize(
    "method,path,body",
    [
        ("PATCH", "/flags/checkout", [None, None]),  # schemathesis: an array took as {} (200)
        ("PATCH", "/flags/checkout", {"impression_data": 1}),
        # schemathesis: a null description was a 500 (NOT NULL column), so were these
        ("PATCH", "/flags/checkout", {"description": None}),
        ("PATCH", "/flags/checkout", {"flag_type": None}),
        ("PATCH", "/flags/checkout", {"impression_data": None}),
        ("PATCH", "/flags/checkout", {"colour": "red"}),
        ("POST", "/flags", {"key": "other", "kind": "boolean", "extra": True}),
        ("POST", "/flags/checkout/environments/prod/rollout", {"percent": True}),
        ("PUT", "/flags/checkout/environments/prod", {"enabled": "yes"}),
        ("PUT", "/segments/beta", ["constraints"]),
    ],
)
def test_a_body_off_its_schema_is_a_422(actor, admin, prod, method, path, body):
    """The flags API validates as strictly as the releases API (releases.api.schemas.In):
    an object where the document says one, no unknown fields, JSON types as written."""
    make_flag(actor, prod)
    token = tokens.create(admin, "strict")[1]
    response = Client().generic(
        method,
        "/api/v1" + path,
        data=json.dumps(body),
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}"},
    )

    assert response.status_code == 422, response.content
    assert response.json()["code"] == "invalid_request"
