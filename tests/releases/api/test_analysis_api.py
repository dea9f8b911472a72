"""The analysis API: templates (admins write, everyone signed in reads) and a deployment's runs
(seen by those who may see the deployment). Every permission test has its denied twin."""

from __future__ import annotations

import pytest

from releases.analysis import runs, templates
from releases.governance import tokens
from releases.models import AuditEvent
from releases.models.analysis import AnalysisRun, AnalysisTemplate
from strategies.analysis.series import Series
from tests import factories
from tests.releases.api.test_api import Api, assert_error, call, error_paths

pytestmark = pytest.mark.django_db

TEMPLATE = {
    "description": "errors, fast",
    "metrics": [{"name": "errors", "query": "error_rate", "interval": "1s", "count": 30}],
}


@pytest.fixture
def api(client, admin):
    return Api(client, tokens.create(admin, "ci")[1])


@pytest.fixture
def viewer_api(client, dev):
    return Api(client, tokens.create(factories.make_persona("viewer", dev), "v")[1])


@pytest.fixture
def outsider_api(client):
    return Api(client, tokens.create(factories.make_persona("outsider"), "o")[1])


def test_an_admin_creates_reads_replaces_and_deletes_a_template(api):
    created = api.post("/analysis-templates", {"name": "error-rate", **TEMPLATE})
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["metrics"][0]["test"] == "sequential"  # defaults are filled in
    assert body["metrics"][0]["min_samples"] == 50
    assert api.get("/analysis-templates").json()["items"][0]["name"] == "error-rate"
    assert api.get("/analysis-templates/error-rate").json()["description"] == "errors, fast"
    replaced = api.put("/analysis-templates/error-rate", {**TEMPLATE, "description": "new"})
    assert replaced.status_code == 200 and replaced.json()["description"] == "new"
    assert api.put("/analysis-templates/other", TEMPLATE).status_code == 201
    assert api("DELETE", "/analysis-templates/other").status_code == 204
    assert_error(api.get("/analysis-templates/other"), 404, "not_found")
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"analysis_template.create", "analysis_template.update"} <= actions
    assert "analysis_template.delete" in actions


def test_a_taken_name_is_a_conflict(api):
    api.post("/analysis-templates", {"name": "error-rate", **TEMPLATE})
    assert_error(api.post("/analysis-templates", {"name": "error-rate", **TEMPLATE}), 409)


def test_an_invalid_template_lists_every_problem_by_path(api):
    bad = {
        "name": "bad",
        "metrics": [
            {"name": "a", "query": "latency", "success_condition": "__import__('os')"},
            {"name": "b", "query": "cpu"},
        ],
    }
    response = api.post("/analysis-templates", bad)
    assert_error(response, 422, "invalid_template")
    assert {"metrics[0].success_condition", "metrics[1].query"} <= set(error_paths(response))
    assert not AnalysisTemplate.objects.exists()
    assert_error(api.post("/analysis-templates", {"name": "Bad Name", **TEMPLATE}), 422)
    assert_error(api.put("/analysis-templates/Bad%20Name", TEMPLATE), 422)


def test_without_a_token_it_is_401(client):
    assert_error(call(client, "GET", "/analysis-templates"), 401, "not_authenticated")


def test_a_viewer_reads_templates_but_may_not_write_them(api, viewer_api):
    api.post("/analysis-templates", {"name": "error-rate", **TEMPLATE})
    assert viewer_api.get("/analysis-templates/error-rate").status_code == 200
    assert_error(viewer_api.post("/analysis-templates", {"name": "x", **TEMPLATE}), 403)
    assert_error(viewer_api.put("/analysis-templates/error-rate", TEMPLATE), 403)
    assert_error(viewer_api("DELETE", "/analysis-templates/error-rate"), 403)


def test_a_read_only_token_may_not_write_templates(client, admin):
    read = Api(client, tokens.create(admin, "r", scopes=["read"])[1])
    assert read.get("/analysis-templates").status_code == 200
    assert_error(read.post("/analysis-templates", {"name": "x", **TEMPLATE}), 403, "forbidden")


@pytest.fixture
def failed_run(target, monkeypatch):
    deployment = factories.make_deployment(target, "2.0")
    templates.save_template("error-rate", {"metrics": TEMPLATE["metrics"]})
    run = runs.start(deployment, "error-rate", key="step-2", step_index=2, now=0.0)

    def fetch(metric, action, cursor, start, end):
        if action == "begin":
            return {"cursor": {}}
        return {
            "baseline": Series.from_counts(950, 0).to_dict(),
            "canary": Series.from_counts(50, 9).to_dict(),
        }

    # the providers are tested against a real agent and Prometheus; here the API is the subject
    monkeypatch.setattr(runs, "fetcher", lambda run, deployment: fetch)
    runs.advance(run, 0.0)
    verdict = runs.advance(AnalysisRun.objects.get(pk=run.pk), 1.0)
    assert verdict.decision == "fail"
    return deployment, AnalysisRun.objects.get(pk=run.pk)


def test_a_deployment_shows_its_runs_with_their_working(api, failed_run):
    deployment, run = failed_run
    response = api.get(f"/deployments/{deployment.pk}/analysis")
    assert response.status_code == 200, response.content
    (item,) = response.json()["items"]
    assert (item["key"], item["phase"], item["decision"]) == ("step-2", "failed", "fail")
    (errors,) = item["metrics"]
    assert errors["test"] == "sequential" and errors["verdict"] == "failed"
    assert errors["canary"]["errors"] == 9 and errors["baseline"]["total"] == 950
    assert errors["interval"]["always_valid"] and errors["effect"]["e_value"] >= 200
    assert "clearly worse" in errors["why"]
    detail = api.get(f"/analysis-runs/{run.pk}").json()
    assert [m["phase"] for m in detail["metrics"][0]["history"]] == ["failed"]
    # what docs/analysis.md promises, in both answers and in the OpenAPI document
    for shown in (item, detail):
        assert shown["step_index"] == 2 and shown["started_at"] and shown["finished_at"]
        assert "score" in shown and shown["score"] == run.score
    schema = api.get("/openapi.json").json()["components"]["schemas"]["RunOut"]["properties"]
    assert {"score", "started_at", "finished_at", "step_index"} <= set(schema)


def test_an_outsider_cannot_see_a_deployments_analysis(outsider_api, viewer_api, failed_run):
    deployment, run = failed_run
    assert viewer_api.get(f"/deployments/{deployment.pk}/analysis").status_code == 200
    assert_error(outsider_api.get(f"/deployments/{deployment.pk}/analysis"), 404, "not_found")
    missing = assert_error(outsider_api.get(f"/analysis-runs/{run.pk}"), 404, "not_found")
    assert "analysis run" in missing["message"]
    assert_error(viewer_api.get("/analysis-runs/999999"), 404)


# --- an Argo Rollouts AnalysisTemplate manifest, pasted as it is -------------------------------


def argo_documents(name):
    import yaml

    from tests.strategies.test_argo_examples import FOLDER

    return list(yaml.safe_load_all((FOLDER / name).read_text()))


def test_post_takes_a_whole_argo_analysis_template_manifest(api):
    manifest = argo_documents("appmesh-canary-rollout.yaml")[0]
    assert manifest["kind"] == "AnalysisTemplate"

    created = api.post("/analysis-templates", manifest)

    assert created.status_code == 201, created.content
    body = created.json()
    assert body["name"] == "success-rate"
    assert body["args"] == [{"name": "envoy_cluster_name", "value": None}]
    (metric,) = body["metrics"]
    assert (metric["provider"], metric["failure_limit"], metric["interval"]) == (
        "prometheus",
        3,
        300.0,
    )
    assert AnalysisTemplate.objects.get(name="success-rate").spec["metrics"][0]["query"]
    assert AuditEvent.objects.filter(action="analysis_template.create").count() == 1
    assert_error(api.post("/analysis-templates", manifest), 409, "conflict")


def test_a_cluster_analysis_template_manifest_is_taken_too(api):
    manifest = argo_documents("appmesh-canary-rollout.yaml")[0]
    manifest = {**manifest, "kind": "ClusterAnalysisTemplate", "metadata": {"name": "cluster-sr"}}

    assert api.post("/analysis-templates", manifest).status_code == 201


def test_a_manifest_is_refused_at_its_own_paths(api):
    manifest = argo_documents("analysis-templates.yaml")[0]
    # a provider we do not support (the job provider is supported since the compat work)
    metric = {**manifest["spec"]["metrics"][0], "provider": {"kayenta": {"address": "http://k"}}}
    manifest = {**manifest, "spec": {**manifest["spec"], "metrics": [metric]}}

    response = api.post("/analysis-templates", manifest)

    body = assert_error(response, 422, "invalid_template")
    assert error_paths(response) == ["spec.metrics[0].provider.kayenta"]
    assert "not supported" in body["message"]
    unnamed = {**manifest, "metadata": {}}
    assert error_paths(api.post("/analysis-templates", unnamed)) == ["metadata.name"]


# --- a Flagger MetricTemplate manifest, pasted as it is ----------------------------------------


def test_post_takes_a_flagger_metric_template_and_names_what_it_lacks(api):
    from tests.strategies.test_flagger_template import NOT_FOUND

    created = api.post("/analysis-templates", NOT_FOUND)

    assert created.status_code == 201, created.content
    body = created.json()
    assert body["name"] == "not-found-percentage"
    (metric,) = body["metrics"]
    assert (metric["provider"], metric["test"]) == ("prometheus", "threshold")
    assert {a["name"] for a in body["args"]} >= {"min", "max", "namespace", "metric-interval"}
    datadog = {
        **NOT_FOUND,
        "metadata": {"name": "dd"},
        "spec": {**NOT_FOUND["spec"], "provider": {"type": "datadog"}},
    }
    refused = api.post("/analysis-templates", datadog)
    assert_error(refused, 422, "invalid_template")
    assert error_paths(refused) == ["spec.provider.type"]
