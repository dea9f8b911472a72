"""The OpenAPI document types the strategy -- one schema per kind, discriminated by ``kind``,
beside Argo Rollouts' and CodeDeploy's spellings -- while the API's contract (../shared/API.md)
holds: every spec error is still ``invalid_spec`` with its path, Argo's format is still accepted,
and the version already live needs ``redeploy``."""

from __future__ import annotations

import pytest

from releases.governance import tokens
from releases.models import Deployment
from releases.models.analysis import AnalysisTemplate
from strategies.analysis.template import normalise
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


# --- the responses type the strategy too ----------------------------------------------------------

OUTPUTS = {
    "DeploymentOut": "strategy",
    "TargetOut": "strategy",
    "StrategyOut": "strategy",
    "ServiceOut": "default_strategy",
    "EnvironmentOut": "default_strategy",
}
OUT_MODELS = {
    "canary": "CanaryStrategyOut",
    "blue_green": "BlueGreenStrategyOut",
    "rolling": "RollingStrategyOut",
    "recreate": "RecreateStrategyOut",
}
# every shape the normaliser writes: each kind, each step, several templates, smoke checks with
# a body, a background analysis, Argo's and CodeDeploy's spellings (translated into ours)
SPECS = [
    {
        "kind": "canary",
        "stable_replicas": 2,
        "steps": [
            {"set_weight": 10},
            {"pause": {"duration": "30s"}},
            {"analysis": {"templates": ["errors", "latency"]}},
            {"set_canary_scale": {"replicas": 2}},
            {
                "set_header_route": {
                    "name": "beta",
                    "match": [{"header": "X-B", "value": {"exact": "y"}}],
                }
            },
            {"pause": {}},
        ],
        "route": {"header": "X-Canary"},
        "analysis": {
            "template": "errors",
            "start_at_step": 1,
            "failure_limit": 2,
            "interval": "5s",
        },
    },
    {
        "kind": "blue_green",
        "replicas": 2,
        "preview_replicas": 1,
        "smoke": [{"path": "/health", "status": 200, "body_contains": "ok"}],
        "auto_promote": "30s",
        "pre_promotion_analysis": {"template": "errors"},
    },
    {"kind": "blue_green", "auto_promote": False},
    {"kind": "rolling", "replicas": 4, "batch_size": "25%", "analysis": {"template": "errors"}},
    {"kind": "recreate", "replicas": 2},
    {"canary": {"steps": [{"setWeight": 20}, {"pause": {"duration": 10}}]}},
    {"blueGreen": {"autoPromotionEnabled": False}},
    {"codedeploy": "ECSCanary10Percent5Minutes"},
]


@pytest.fixture
def templates(db):
    metric = {"name": "errors", "query": "error_rate", "interval": "1s", "count": 3}
    for name in ("errors", "latency"):
        AnalysisTemplate.objects.create(name=name, spec=normalise({"metrics": [metric]}))


def document(client) -> dict:
    return client.get("/api/v1/openapi.json").json()


def validator(doc: dict, model: str):
    """A JSON Schema validator for one of the document's response models (refs resolved in it)."""
    import jsonschema

    schema = {"$ref": f"#/components/schemas/{model}", "components": doc["components"]}
    return jsonschema.Draft202012Validator(schema)


def test_the_responses_have_one_schema_per_kind_discriminated_by_kind(client):
    schemas = document(client)["components"]["schemas"]
    for model, field in OUTPUTS.items():
        shown = schemas[model]["properties"][field]
        union = next(o for o in [shown, *shown.get("anyOf", [])] if "discriminator" in o)
        assert union["discriminator"]["propertyName"] == "kind", model
        mapping = {k: v.rsplit("/", 1)[-1] for k, v in union["discriminator"]["mapping"].items()}
        assert mapping == OUT_MODELS, model
    canary = schemas["CanaryStrategyOut"]
    assert canary["additionalProperties"] is False
    assert {"steps", "stable_replicas", "health", "route"} <= set(canary["required"])
    # the inputs keep their own schemas (a default may be left out there, not in an answer)
    assert "CanaryStrategy" in schemas and "health" not in schemas["CanaryStrategy"]["required"]


def test_every_normalised_strategy_the_api_answers_fits_its_schema(api, client, templates):
    doc = document(client)
    check = validator(doc, "StrategyOut")
    for raw in SPECS:
        answer = api.post("/strategies/validate", {"strategy": raw})
        assert answer.status_code == 200, (raw, answer.json())
        problems = [e.message for e in check.iter_errors(answer.json())]
        assert not problems, (raw, answer.json()["strategy"], problems)


def test_a_deployment_a_target_and_defaults_answer_typed_strategies(api, client, target, templates):
    doc = document(client)
    put = api.put(
        f"/services/{target.service.slug}/targets/{target.environment.slug}",
        {"provider": "local", "strategy": SPECS[0]},
    )
    assert put.status_code in (200, 201), put.json()
    factories.make_release(target.service, "1.0.0")
    d = factories.make_deployment(target, "1.0.0", SPECS[1])
    service = api.patch(f"/services/{target.service.slug}", {"default_strategy": SPECS[3]})
    assert service.status_code == 200, service.json()
    env = api.patch(f"/environments/{target.environment.slug}", {"default_strategy": SPECS[4]})
    assert env.status_code == 200, env.json()
    answers = {
        "TargetOut": api.get(f"/services/{target.service.slug}/targets/{target.environment.slug}"),
        "DeploymentOut": api.get(f"/deployments/{d.pk}"),
        "ServiceOut": service,
        "EnvironmentOut": env,
    }
    for model, answer in answers.items():
        assert answer.status_code == 200, answer.json()
        body = answer.json()
        assert body[OUTPUTS[model]]["kind"], (model, body)
        problems = [e.message for e in validator(doc, model).iter_errors(body)]
        assert not problems, (model, problems)
