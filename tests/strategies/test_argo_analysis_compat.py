"""Argo Rollouts' analysis read as it is written: AnalysisTemplate manifests (old spellings,
dryRun, what we lack named at the manifest path), Argo's condition forms over a result vector,
several templates in one analysis, and the engine carrying header routes until promotion."""

from __future__ import annotations

import math

import pytest

from strategies.analysis import argo_template, expr
from strategies.analysis import template as analysis_template
from strategies.spec import SpecError, describe_steps, normalise

from .fleet import Fleet, run

# --- AnalysisTemplate manifests ----------------------------------------------------------------


def template_manifest(**metric) -> dict:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "AnalysisTemplate",
        "metadata": {"name": "success-rate"},
        "spec": {
            "args": [{"name": "svc"}],
            "metrics": [
                {
                    "name": "success-rate",
                    "interval": "1m",
                    "provider": {
                        "prometheus": {
                            "address": "http://127.0.0.1:9090",
                            "query": 'sum(rate(ok{svc="{{args.svc}}"}[1m]))',
                        }
                    },
                    **metric,
                }
            ],
        },
    }


def test_an_analysis_template_manifest_is_translated_with_its_old_spellings():
    raw = template_manifest(successCondition="len(result) > 0 && result[0] >= 0.99", maxFailures=2)
    raw["spec"]["dryRun"] = [{"metricName": "success-rate"}]
    assert argo_template.name(raw) == "success-rate"
    (metric,) = argo_template.normalise(raw)["metrics"]
    assert metric["provider"] == "prometheus" and metric["address"] == "http://127.0.0.1:9090"
    assert metric["failure_limit"] == 2 and metric["dry_run"] is True
    assert metric["success_condition"] == "len(result) > 0 && result[0] >= 0.99"


def test_analysis_template_keys_we_lack_are_named_at_the_manifest_path():
    raw = template_manifest(count="{{args.count}}")
    raw["spec"]["metrics"][0]["provider"]["prometheus"]["timeout"] = 5
    raw["spec"]["measurementRetention"] = [{"metricName": "*", "limit": 0}]
    raw["spec"]["args"].append(
        {"name": "pod", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}
    )
    with pytest.raises(SpecError) as caught:
        argo_template.normalise(raw)
    paths = [e.path for e in caught.value.errors]
    assert paths == [
        "spec.args[1].valueFrom.fieldRef",
        "spec.measurementRetention[0]",
        "spec.metrics[0].provider.prometheus.timeout",
        "spec.metrics[0].count",
    ]
    assert all("unknown" not in e.message for e in caught.value.errors)


@pytest.mark.parametrize("provider", ["datadog", "newRelic", "cloudWatch"])
def test_metric_providers_we_lack_are_named_with_what_to_use(provider):
    raw = template_manifest()
    raw["spec"]["metrics"][0]["provider"] = {provider: {}}
    with pytest.raises(SpecError) as caught:
        argo_template.normalise(raw)
    ((error,),) = [caught.value.errors]
    assert error.path == f"spec.metrics[0].provider.{provider}"
    assert "use a prometheus query, or the local provider's error_rate / latency" in error.message


def test_a_secret_key_ref_argument_is_a_secret_read_at_each_measurement():
    raw = template_manifest()
    secret = {"secretKeyRef": {"name": "prom-creds", "key": "token"}}
    raw["spec"]["args"].append({"name": "token", "valueFrom": secret})
    args = argo_template.normalise(raw)["args"]
    assert args[1] == {
        "name": "token",
        "value": None,
        "secret": {"name": "prom-creds", "key": "token"},
    }
    raw["spec"]["args"][1]["valueFrom"] = {"secretKeyRef": {"name": "prom-creds"}}
    with pytest.raises(SpecError) as caught:
        argo_template.normalise(raw)
    assert [e.path for e in caught.value.errors] == ["spec.args[1].secret"]


def job_manifest(**container) -> dict:
    raw = template_manifest()
    job = {"spec": {"backoffLimit": 1, "template": {"spec": {"containers": [container]}}}}
    raw["spec"]["metrics"][0]["provider"] = {"job": job}
    return raw


def test_the_job_provider_runs_its_containers_command():
    # argo-rollouts examples/analysis-templates.yaml
    raw = job_manifest(
        name="sleep",
        image="alpine:3.8",
        command=["sh", "-c"],
        args=["exit 0"],
        env=[{"name": "MODE", "value": "smoke"}],
    )
    (metric,) = argo_template.normalise(raw)["metrics"]

    assert (metric["provider"], metric["query"]) == ("job", "sh -c 'exit 0'")
    assert metric["test"] == "threshold" and metric["success_condition"] == "canary == 1"
    # how a Kubernetes target runs it: the Job's image, environment and back-off
    assert (metric["image"], metric["env"], metric["backoff_limit"]) == (
        "alpine:3.8",
        {"MODE": "smoke"},
        1,
    )
    assert "timeout" not in metric  # no activeDeadlineSeconds: the setting's default


def test_a_jobs_deadline_is_the_metrics_timeout_and_its_options_are_job_only():
    raw = job_manifest(name="t", image="example/smoke:1", command=["true"])
    raw["spec"]["metrics"][0]["provider"]["job"]["spec"]["activeDeadlineSeconds"] = 90
    (metric,) = argo_template.normalise(raw)["metrics"]
    assert (metric["query"], metric["timeout"]) == ("true", 90.0)
    spec = argo_template.normalise(raw)
    assert analysis_template.normalise(spec) == spec  # a stored template reads back the same
    wrong = {"name": "e", "provider": "local", "query": "error_rate", "image": "x:1"}
    with pytest.raises(SpecError) as caught:
        analysis_template.normalise({"metrics": [wrong]})
    assert [e.path for e in caught.value.errors] == ["metrics[0].image"]
    unknown = {"name": "j", "provider": "job", "query": "true", "env": {"A": "{{args.nope}}"}}
    with pytest.raises(SpecError) as caught:
        analysis_template.normalise({"metrics": [unknown]})
    assert [e.path for e in caught.value.errors] == ["metrics[0].env.A"]


def test_a_job_with_only_an_image_runs_its_entrypoint_and_secret_env_stays_a_reference():
    # argo-rollouts examples/analysis-endtest.yaml: a test-suite image, credentials from a Secret
    secret = {"valueFrom": {"secretKeyRef": {"name": "endtest-credentials", "key": "APP_ID"}}}
    raw = job_manifest(name="t", image="example/endtest:0.2.1", env=[{"name": "APP_ID", **secret}])
    (metric,) = argo_template.normalise(raw)["metrics"]
    assert (metric["query"], metric["image"]) == ("", "example/endtest:0.2.1")
    # only the reference: the Job reads the Secret from the cluster, nothing here holds its value
    assert metric["env"] == {"APP_ID": {"secret": {"name": "endtest-credentials", "key": "APP_ID"}}}


def test_a_job_without_a_command_or_an_image_is_named():
    raw = job_manifest(name="t")
    with pytest.raises(SpecError) as caught:
        argo_template.normalise(raw)
    assert [e.path for e in caught.value.errors] == [
        "spec.metrics[0].provider.job.spec.template.spec.containers[0].command"
    ]
    raw = job_manifest(name="t", command=["true"], env=[{"name": "TOKEN", "valueFrom": {}}])
    with pytest.raises(SpecError) as caught:
        argo_template.normalise(raw)
    (error,) = caught.value.errors
    assert error.path.endswith("containers[0].env[0]") and "secretKeyRef" in error.message


def web_manifest(**web) -> dict:
    raw = template_manifest(successCondition="result == true")
    raw["spec"]["metrics"][0]["provider"] = {"web": web}
    return raw


def test_the_web_provider_is_translated_url_to_address_and_json_path_to_query():
    # argo-rollouts docs/analysis/web.md
    raw = web_manifest(
        url="http://my-server.com/api/v1/measurement?service={{args.svc}}",
        jsonPath="{$.data.ok}",
        method="GET",
    )
    (metric,) = argo_template.normalise(raw)["metrics"]

    assert (metric["provider"], metric["query"], metric["statistic"]) == (
        "web",
        "{$.data.ok}",
        "last",
    )
    assert metric["address"] == "http://my-server.com/api/v1/measurement?service={{args.svc}}"


@pytest.mark.parametrize(
    ("web", "path", "words"),
    [
        (
            {"url": "http://x/", "headers": [{"key": "Authorization", "value": "t"}]},
            "headers",
            "WEB_METRICS_HEADERS",
        ),
        ({"url": "http://x/", "method": "POST", "jsonBody": {"a": 1}}, "method", "only GET"),
        ({"url": "http://x/", "timeoutSeconds": 20}, "timeoutSeconds", "WEB_METRICS_TIMEOUT"),
        ({"jsonPath": "{$.ok}"}, "url", "is required"),
        ({"url": "http://x/", "jsonPath": "{$..[}"}, None, "not a JSONPath"),
        ({"url": "ftp://x/"}, None, "http:// or https://"),
    ],
)
def test_what_the_web_provider_does_not_do_is_named(web, path, words):
    with pytest.raises(SpecError) as caught:
        argo_template.normalise(web_manifest(**web))
    errors = {e.path: e.message for e in caught.value.errors}
    if path is not None:
        assert words in errors[f"spec.metrics[0].provider.web.{path}"], errors
    else:
        assert any(words in message for message in errors.values()), errors
    assert all("unknown" not in message for message in errors.values())


# --- Argo's condition forms --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("condition", "value", "holds"),
    [
        ("result[0] >= 0.99", 0.995, True),
        ("result[0] >= 0.99", 0.98, False),
        ("result[1] > 0", 1.0, False),  # past the end: NaN
        ("len(result) == 0", math.nan, True),
        ("len(result) > 0 && all(result, {# < 0.05})", 0.01, True),
        ("any(result, {# > 0.05})", 0.01, False),
        ("none(result, {# > 0.05})", 0.01, True),
        ("one(result, {# < 1})", 0.5, True),
        ("default(result[0], 0) < 0.05", math.nan, True),
        ("isNaN(result[0])", math.nan, True),
        ("asInt(result) == 3", 3.7, True),
        ("result != 1 && !(result > 2)", 1.5, True),
    ],
)
def test_argo_condition_forms_mean_what_they_mean_there(condition, value, holds):
    assert expr.evaluate(condition, expr.variables(value, None)) is holds


@pytest.mark.parametrize(
    ("condition", "said"),
    [
        ("result[x] > 0", "may only index canary, baseline, result by a number"),
        ("ratio[0] > 0", "may only index canary, baseline, result by a number"),
        ("{1} == 1", "uses {...} outside all/any/none/one"),
        ("# > 1", "uses '#' outside a {...} of all/any/none/one"),
        ("all(result, 1)", "all(result, {...}) takes one {# ...} condition"),
        ("len(2) > 0", "len(...) takes canary, baseline, result first"),
        ("default(result) > 0", "calls default with 2 argument(s)"),
        ("result == 'It worked!'", "may only use numbers, not 'It worked!'"),
    ],
)
def test_wrong_uses_of_argos_forms_are_refused_saying_why(condition, said):
    with pytest.raises(expr.InvalidExpression) as caught:
        expr.parse(condition)
    assert said in str(caught.value)


# --- the engine carries header routes ---------------------------------------------------------


def test_a_header_route_goes_with_the_weights_until_promotion_and_is_removed_then():
    beta = {"name": "beta", "match": [{"headerName": "X-Beta", "headerValue": {"exact": "yes"}}]}
    wait = {"pause": {"duration": 10}}
    spec = normalise(
        {
            "canary": {
                "steps": [
                    {"setCanaryScale": {"replicas": 1}},
                    {"setHeaderRoute": beta},
                    wait,
                    {"setWeight": 50},
                    wait,
                    {"setHeaderRoute": {"name": "beta"}},
                    wait,
                    {"setWeight": 75},
                ]
            },
            "replicas": 2,
        }
    )
    route = {"name": "beta", "match": [{"header": "X-Beta", "value": {"exact": "yes"}}]}
    trace = []
    last, _, _ = run(
        Fleet(stable=2), spec, {}, mode="forward", limit=200, check=lambda obs, d: trace.append(d)
    )
    assert last.outcome == "done"
    plans = [(d.weights, (d.route_plan.rules or {}).get("header_routes")) for d in trace if d.route]
    assert plans == [
        ({"stable": 100, "canary": 0}, None),
        ({"stable": 100, "canary": 0}, [route]),
        ({"stable": 50, "canary": 50}, [route]),
        ({"stable": 50, "canary": 50}, None),
        ({"stable": 25, "canary": 75}, None),
        ({"stable": 0, "canary": 100}, None),
    ]


# --- several templates in one analysis -------------------------------------------------------


def several(verdicts):
    from .fleet import NEVER

    spec = normalise(
        {
            "canary": {
                "steps": [
                    {"setWeight": 20},
                    {
                        "analysis": {
                            "templates": [{"templateName": "errors"}, {"templateName": "latency"}],
                            "args": [{"name": "max", "value": "0.05"}],
                        }
                    },
                    {"setWeight": 60},
                ]
            },
            "replicas": 2,
        }
    )
    fleet = Fleet(stable=2, analysis_outcome=lambda key, r: verdicts.get(key, (NEVER, "pass")))
    trace = []
    last, _, _ = run(
        fleet,
        spec,
        {},
        mode="forward",
        limit=60,
        must_stop=False,
        check=lambda obs, d: trace.append(d),
    )
    return spec, fleet, trace, last


def test_several_templates_in_one_analysis_run_side_by_side_with_the_same_args():
    spec, fleet, trace, last = several({"step-1": (2, "pass"), "step-1.2": (4, "pass")})
    assert spec["steps"][1]["analysis"] == {
        "template": "errors",
        "templates": ["errors", "latency"],
        "args": {"max": "0.05"},
    }
    assert describe_steps(spec)[1].startswith("analysis 'errors' + 'latency' (max=0.05)")
    started = [r for d in trace for r in d.start_analysis or []]
    assert started == [
        {"key": "step-1", "template": "errors", "args": {"max": "0.05"}, "step_index": 1},
        {"key": "step-1.2", "template": "latency", "args": {"max": "0.05"}, "step_index": 1},
    ]
    assert last.outcome == "done"  # on only once both passed
    assert sorted(fleet.analysis_starts) == ["step-1", "step-1.2"]


def test_an_analysis_of_several_templates_fails_when_one_fails():
    _, fleet, _, last = several({"step-1": (2, "pass"), "step-1.2": (3, "fail")})
    assert last.failure is not None and "step-1.2" in last.failure
    assert last.outcome is None and fleet.weights == {"stable": 80, "canary": 20}  # not on to 60%


def test_a_references_measurement_retention_is_translated_and_checked():
    from strategies.spec import normalise as spec_normalise

    ref = {"templates": [{"templateName": "a"}]}
    keep = [{"metricName": "*", "limit": 5}, {"metricName": "errors", "limit": 50}]
    spec = spec_normalise(
        {"canary": {"steps": [{"setWeight": 5}], "analysis": {**ref, "measurementRetention": keep}}}
    )
    assert spec["analysis"]["measurement_retention"] == {"*": 5, "errors": 50}
    with pytest.raises(SpecError) as caught:
        spec_normalise(
            {
                "canary": {
                    "steps": [{"setWeight": 5}],
                    "analysis": {**ref, "measurementRetention": [{"limit": 5}]},
                }
            }
        )
    assert [e.path for e in caught.value.errors] == ["canary.analysis.measurementRetention[0]"]
