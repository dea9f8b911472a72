"""Flagger's MetricTemplate read as one of our analysis templates (strategies.analysis
.flagger_template). The inputs are Flagger's documentation examples (docs/gitbook/usage/metrics.md:
Prometheus custom metrics; the other providers' examples to name them as not supported)."""

from __future__ import annotations

import pytest

from strategies.analysis import expr, flagger_template
from strategies.analysis.template import TemplateError, bind, resolve_args

NOT_FOUND = {  # usage/metrics.md, "Prometheus"
    "apiVersion": "flagger.app/v1beta1",
    "kind": "MetricTemplate",
    "metadata": {"name": "not-found-percentage", "namespace": "istio-system"},
    "spec": {
        "provider": {"type": "prometheus", "address": "http://prometheus.istio-system:9090"},
        "query": """
            100 - sum(
                rate(
                    istio_requests_total{
                        reporter="destination",
                        destination_workload_namespace="{{ namespace }}",
                        destination_workload="{{ target }}",
                        response_code!="404"
                    }[{{ interval }}]
                )
            )
            /
            sum(
                rate(
                    istio_requests_total{
                        reporter="destination",
                        destination_workload_namespace="{{ namespace }}",
                        destination_workload="{{ target }}"
                    }[{{ interval }}]
                )
            ) * 100
        """,
    },
}


def with_spec(**spec):
    return {**NOT_FOUND, "spec": {**NOT_FOUND["spec"], **spec}}


def test_a_prometheus_metric_template_becomes_a_threshold_metric_with_the_canarys_range():
    assert flagger_template.is_manifest(NOT_FOUND)
    assert flagger_template.name(NOT_FOUND) == "not-found-percentage"
    template = flagger_template.normalise(NOT_FOUND)

    (metric,) = template["metrics"]
    assert (metric["name"], metric["provider"], metric["test"]) == (
        "not-found-percentage",
        "prometheus",
        "threshold",
    )
    assert metric["address"] == "http://prometheus.istio-system:9090"
    assert 'destination_workload_namespace="{{args.namespace}}"' in metric["query"]
    assert 'destination_workload="{{target}}"' in metric["query"]
    assert "[{{args.metric-interval}}]" in metric["query"]
    assert {a["name"]: a["value"] for a in template["args"]} == {
        "min": "-1e308",
        "max": "1e308",
        "namespace": "default",
        "metric-interval": "1m",
        "ingress": "",
    }


@pytest.mark.parametrize(
    ("value", "given", "failed"),
    [(3.0, {"max": "5"}, False), (7.0, {"max": "5"}, True), (7.0, {"min": "8"}, True)],
)
def test_the_range_given_decides(value, given, failed):
    template = flagger_template.normalise(NOT_FOUND)
    bound = bind(template, resolve_args(template, given))
    condition = bound["metrics"][0]["failure_condition"]
    assert expr.evaluate(condition, expr.variables(value, None)) is failed


def test_template_variables_become_required_arguments():
    query = 'sum(rate(http_requests_total{direction="{{ variables.direction }}"}[{{interval}}]))'
    template = flagger_template.normalise(with_spec(query=query))

    assert '{direction="{{args.variables.direction}}"}' in template["metrics"][0]["query"]
    declared = {a["name"]: a["value"] for a in template["args"]}
    assert declared["variables.direction"] is None
    with pytest.raises(TemplateError) as caught:
        resolve_args(template, {})
    assert caught.value.errors[0].path == "args.variables.direction"


def test_no_address_is_the_providers_setting():
    spec = with_spec(provider={"type": "prometheus"})
    assert flagger_template.normalise(spec)["metrics"][0]["address"] is None


@pytest.mark.parametrize(
    ("spec", "path", "words"),
    [
        (
            {"provider": {"type": "datadog", "secretRef": {"name": "dd"}}},
            "spec.provider.type",
            "not supported",
        ),
        (
            {"provider": {"type": "cloudwatch", "region": "us-east-1"}},
            "spec.provider.type",
            "not supported",
        ),
        ({"provider": {"type": "nagios"}}, "spec.provider.type", "unknown provider"),
        (
            {"provider": {"type": "prometheus", "secretRef": {"name": "prom-auth"}}},
            "spec.provider.secretRef",
            "Prometheus provider's settings",
        ),
        ({"query": 'up{a="{{ if .x }}"}'}, "spec.query", "is not supported"),
        ({"query": "  "}, "spec.query", "is required"),
        ({"queries": "up"}, "spec.queries", "unknown key"),
    ],
)
def test_what_we_lack_is_named_at_the_manifests_path(spec, path, words):
    with pytest.raises(TemplateError) as caught:
        flagger_template.normalise(with_spec(**spec))
    found = {e.path: e.message for e in caught.value.errors}
    assert words in found[path], found
