"""The deployment views answer without ninja's response validation (``releases.api.common.answer``)
and read plain rows (``releases.live.rows``): their bodies must be exactly what the validation
against the declared schema would have sent, and the rows what the ORM reads."""

from __future__ import annotations

import json

import pytest
from ninja.responses import NinjaJSONEncoder

from releases import actions
from releases.api.schemas import DeploymentOut, DeploymentPage, ReleaseOut
from releases.governance import tokens
from releases.live.presenters import deployment_dict, deployment_view
from releases.live.rows import COLUMNS, deployment_rows
from releases.models import Deployment
from tests import factories
from tests.releases.api.test_api import ROLLING, Api, finish, started

pytestmark = pytest.mark.django_db

CANARY = {"kind": "canary", "steps": [{"set_weight": 20}, {"pause": {}}]}


@pytest.fixture
def api(client, admin):
    return Api(client, tokens.create(admin, "ci")[1])


@pytest.fixture
def history(target, prod, service):
    """Deployments in several shapes: finished with a previous release, a rollback of one,
    progressing, paused, pending on another target, and one by nobody (the system)."""
    first = finish(started(factories.make_deployment(target, "1.0.0", ROLLING)))
    second = finish(started(factories.make_deployment(target, "1.1.0", CANARY)))
    back = actions.rollback(factories.api_actor(), second.pk, reason="bad")
    back = Deployment.objects.get(rollback_of=second)
    finish(back)
    paused = started(factories.make_deployment(target, "1.2.0", CANARY))
    actions.pause(factories.api_actor(), paused.pk)
    other = factories.make_target(service, prod)
    pending = factories.make_deployment(other, "1.2.0", ROLLING)
    return [first, second, back, paused, pending]


def validated(schema, body: bytes) -> str:
    """What ninja would have rendered: the body validated against ``schema``, dumped."""
    return json.dumps(schema.model_validate(json.loads(body)).model_dump(), cls=NinjaJSONEncoder)


def test_the_list_is_what_its_schema_validation_would_send(api, history):
    response = api.get("/deployments?limit=3")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json; charset=utf-8"
    assert response.content.decode() == validated(DeploymentPage, response.content)
    body = response.json()
    assert [d["id"] for d in body["items"]] == sorted((d.pk for d in history), reverse=True)[:3]
    assert body["next"] == body["items"][-1]["id"]
    rest = api.get(f"/deployments?before={body['next']}").json()
    assert rest["next"] is None and len(body["items"]) + len(rest["items"]) == len(history)


def test_each_deployment_is_what_the_presenter_makes_of_the_model(api, history):
    for d in history:
        response = api.get(f"/deployments/{d.pk}")
        assert response.status_code == 200
        assert response.content.decode() == validated(DeploymentOut, response.content)
        model = Deployment.objects.get(pk=d.pk)
        assert response.json() == json.loads(json.dumps(deployment_dict(model)))
    listed = {d["id"]: d for d in api.get("/deployments").json()["items"]}
    for d in history:
        assert listed[d.pk] == api.get(f"/deployments/{d.pk}").json()
    kinds = {(d["state"], (d["pause"] or {}).get("kind")) for d in listed.values()}
    assert ("paused", "operator") in kinds and ("pending", None) in kinds
    assert any(d["stable_version"] for d in listed.values())
    assert any(d["rollback_of"] for d in listed.values())


def test_the_rows_are_what_the_orm_reads(history):
    ids = [d.pk for d in history]
    rows = deployment_rows([*ids, 10**9, 2**70, -(2**70)])
    orm = {r["id"]: r for r in Deployment.objects.filter(pk__in=ids).values(*COLUMNS)}
    assert rows == orm
    assert all(list(rows[pk]) == list(COLUMNS) for pk in ids)
    for d in Deployment.objects.filter(pk__in=ids):
        assert deployment_view(rows[d.pk]) == deployment_dict(d)


def test_a_new_deployment_and_an_operator_command_answer_as_validated(api, target):
    factories.make_release(target.service, "1.0.0")
    response = api.post(
        "/deployments", {"service": "api", "environment": "dev", "version": "1.0.0"}
    )
    assert response.status_code == 201
    assert response.content.decode() == validated(DeploymentOut, response.content)
    again = api.post("/deployments/{}/pause".format(response.json()["id"]))
    assert again.status_code == 202, again.content
    assert again.content.decode() == validated(DeploymentOut, again.content)
    assert again.json()["state"] == "paused"


def test_a_new_release_answers_as_validated(api, service):
    response = api.post("/services/api/releases", {"version": "3.0.0", "commit": "abc1234"})
    assert response.status_code == 201
    assert response.content.decode() == validated(ReleaseOut, response.content)


def test_an_unknown_or_out_of_range_deployment_is_a_404(api):
    for pk in (10**9, 2**63 - 1):
        response = api.get(f"/deployments/{pk}")
        assert response.status_code == 404, response.content
        assert response.json()["details"] == {"deployment": pk}
