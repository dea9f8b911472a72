"""The OpenAPI document types the strategy -- one schema per kind, discriminated by ``kind``,
beside Argo Rollouts' and CodeDeploy's spellings -- while the API's contract (../shared/API.md)
holds: every spec error is still ``invalid_spec`` with its path, Argo's format is still accepted,
and the version already live needs ``redeploy``."""

from __future__ import annotations

import pytest

from releases.governance import tokens
from releases.models import Deployment
from tests import factories
from tests.releases.api.test_api import Api, assert_error, error_paths, finish

pytestmark = pytest.mark.django_db

KINDS = {"canary", "blue_green", "rolling", "recreate"}


@pytest.fixture
def api(client, admin):
    return Api(client, tokens.create(admin, "ci")[1])


def test_the_document_has_one_schema_per_kind_discriminated_by_kind(client):
    doc = client.get("/api/v1/openapi.json").json()
    schemas = doc["components"]["schemas"]
    for model in ("DeploymentIn", "StrategyIn", "TargetIn"):
        union = schemas[model]["properties"]["strategy"]
        options = union.get("anyOf", [])
        ours = next(o for o in options if "discriminator" in o)
        assert ours["discriminator"]["propertyName"] == "kind"
        mapping = ours["discriminator"]["mapping"]
        assert set(mapping) == KINDS, model
        names = {o.get("$ref", "").rsplit("/", 1)[-1] for o in options}
        assert {"CodeDeployStrategy", "ArgoRolloutsStrategy"} <= names, (model, names)
    canary = schemas["CanaryStrategy"]
    assert canary["properties"]["kind"]["const"] == "canary"
    assert "steps" in canary["required"]
    assert canary["additionalProperties"] is False  # unknown keys are errors
    assert schemas["StepSetWeight"]["properties"]["set_weight"]["maximum"] == 100


def test_errors_keep_the_api_shape_and_argo_still_goes_through(api):
    bad = {"kind": "canary", "steps": [{"set_weight": 140}], "colour": "red"}
    response = api.post("/strategies/validate", {"strategy": bad})
    assert_error(response, 422, "invalid_spec")
    assert {"steps[0].set_weight", "colour"} <= set(error_paths(response))
    assert_error(api.post("/strategies/validate", {"strategy": "canary"}), 422, "invalid_spec")
    # POST /deployments still wants an object (422 invalid_request, as before the types)
    not_object = api.post(
        "/deployments", {"service": "api", "environment": "dev", "version": "1.0.0", "strategy": []}
    )
    assert_error(not_object, 422, "invalid_request")
    argo = {"canary": {"steps": [{"setWeight": 20}, {"pause": {}}]}}
    answer = api.post("/strategies/validate", {"strategy": argo})
    assert answer.status_code == 200, answer.json()
    assert answer.json()["strategy"]["kind"] == "canary"


def test_the_version_already_live_needs_redeploy(api, target):
    factories.make_release(target.service, "1.0.0")
    finish(factories.make_deployment(target, "1.0.0"))
    body = {"service": target.service.slug, "environment": target.environment.slug}
    again = api.post("/deployments", {**body, "version": "1.0.0"})
    assert_error(again, 409, "already_live")
    assert "redeploy" in again.json()["message"]
    assert Deployment.objects.count() == 1
    ok = api.post("/deployments", {**body, "version": "1.0.0", "redeploy": True})
    assert ok.status_code == 201, ok.json()
    assert ok.json()["target_version"] == "1.0.0"
