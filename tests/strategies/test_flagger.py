"""Flagger's Canary translated into our canary spec (strategies.flagger). The inputs are Flagger's
own documentation examples (fluxcd/flagger docs/gitbook: usage/how-it-works.md, the Istio A/B
testing and blue/green mirroring tutorials, usage/webhooks.md's manual gating), as a user would
paste them."""

from __future__ import annotations

import copy
import json

import pytest

from strategies import flagger
from strategies.analysis.template import normalise as normalise_template
from strategies.spec import SpecError, describe_steps, normalise, required_capabilities

LOAD_TEST = {
    "name": "load-test",
    "url": "http://flagger-loadtester.test/",
    "metadata": {"cmd": "hey -z 1m -q 10 -c 2 http://podinfo-canary.test:9898/"},
}
METRICS = [
    {"name": "request-success-rate", "thresholdRange": {"min": 99}, "interval": "1m"},
    {"name": "request-duration", "thresholdRange": {"max": 500}, "interval": "1m"},
]
PODINFO = {  # usage/how-it-works.md
    "apiVersion": "flagger.app/v1beta1",
    "kind": "Canary",
    "metadata": {"name": "podinfo"},
    "spec": {
        "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
        "service": {"port": 9898},
        "analysis": {
            "interval": "1m",
            "threshold": 10,
            "maxWeight": 50,
            "stepWeight": 5,
            "metrics": METRICS,
            "webhooks": [LOAD_TEST],
        },
    },
}
AB_TEST = {  # tutorials/istio-ab-testing.md
    "apiVersion": "flagger.app/v1beta1",
    "kind": "Canary",
    "metadata": {"name": "abtest", "namespace": "test"},
    "spec": {
        "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "abtest"},
        "progressDeadlineSeconds": 60,
        "autoscalerRef": {
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "name": "abtest",
        },
        "service": {"port": 80, "targetPort": 9898, "gateways": ["public-gateway"]},
        "analysis": {
            "interval": "1m",
            "threshold": 10,
            "iterations": 10,
            "match": [
                {"headers": {"user-agent": {"regex": ".*Firefox.*"}}},
                {"headers": {"cookie": {"regex": "^(.*?;)?(type=insider)(;.*)?$"}}},
            ],
            "metrics": METRICS,
        },
    },
}


def without_load_test(manifest):
    out = copy.deepcopy(manifest)
    out["spec"]["analysis"].pop("webhooks", None)
    return out


def errors_of(manifest) -> dict[str, str]:
    with pytest.raises(SpecError) as caught:
        normalise(manifest)
    return {e.path: e.message for e in caught.value.errors}


def with_analysis(**analysis):
    return {"apiVersion": "flagger.app/v1beta1", "kind": "Canary", "spec": {"analysis": analysis}}


def test_progressive_shifting_is_a_weight_and_a_pause_of_interval_per_step_weight():
    spec = normalise(without_load_test(PODINFO))

    assert spec["kind"] == "canary"
    weights = [s["set_weight"] for s in spec["steps"] if "set_weight" in s]
    assert weights == list(range(5, 55, 5))
    assert spec["steps"][:2] == [{"set_weight": 5}, {"pause": {"duration": 60.0}}]
    assert all(s == {"pause": {"duration": 60.0}} for s in spec["steps"][1::2])
    assert describe_steps(spec)[-1].startswith("promote")


def test_builtin_metrics_become_the_builtin_template_with_threshold_as_failure_limit():
    spec = normalise(without_load_test(PODINFO))

    assert spec["analysis"] == {
        "template": flagger.BUILTIN_TEMPLATE,
        "args": {"max-error-rate": "0.01", "max-duration": "500"},
        "start_at_step": 0,
        "failure_limit": 9,  # the 10th failed check rolls back, as Flagger's threshold: 10
        "interval": 60.0,
    }
    # the built-in template takes exactly those arguments
    template = normalise_template(flagger.BUILTIN_TEMPLATE_SPEC)
    assert {a["name"] for a in template["args"]} == set(spec["analysis"]["args"])


def test_the_spec_names_the_builtin_template_so_a_store_without_it_refuses():
    def check(name, args):
        return [] if name == flagger.BUILTIN_TEMPLATE else [("template", f"no {name}")]

    assert normalise(without_load_test(PODINFO), templates=check)["analysis"]["template"]
    missing = errors_of_check(without_load_test(PODINFO), lambda name, args: [("template", "no")])
    assert list(missing) == ["spec.analysis.metrics.template"]


def errors_of_check(manifest, check):
    with pytest.raises(SpecError) as caught:
        normalise(manifest, templates=check)
    return {e.path: e.message for e in caught.value.errors}


def test_step_weights_are_the_listed_weights():
    spec = normalise(with_analysis(interval="30s", threshold=2, stepWeights=[1, 2, 10, 80]))

    assert [s["set_weight"] for s in spec["steps"] if "set_weight" in s] == [1, 2, 10, 80]
    assert {"pause": {"duration": 30.0}} in spec["steps"]
    assert "analysis" not in spec or spec["analysis"] is None  # no metrics: no analysis


def test_ab_testing_is_one_header_route_per_match_then_iterations_times_interval():
    spec = normalise(AB_TEST)

    assert spec["steps"] == [
        {"set_canary_scale": {"weight": 100}},
        {
            "set_header_route": {
                "name": "flagger-ab-1",
                "match": [{"header": "user-agent", "value": {"regex": ".*Firefox.*"}}],
            }
        },
        {
            "set_header_route": {
                "name": "flagger-ab-2",
                "match": [
                    {"header": "cookie", "value": {"regex": "^(.*?;)?(type=insider)(;.*)?$"}}
                ],
            }
        },
        {"pause": {"duration": 600.0}},
    ]
    assert spec["progress_deadline"] == 60.0
    assert "header_routes" in required_capabilities(spec)


def test_mirroring_copies_mirror_weight_percent_then_waits_the_iterations():
    # tutorials/istio-blue-green.md, "Traffic Mirroring"
    spec = normalise(
        with_analysis(
            interval="1m",
            threshold=5,
            iterations=10,
            mirror=True,
            mirrorWeight=100,
            metrics=METRICS,
        )
    )

    assert spec["steps"][0] == {"set_canary_scale": {"weight": 100}}
    assert spec["steps"][1] == {
        "set_mirror_route": {
            "name": "flagger-mirror",
            "percentage": 100,
            "match": [{"method": None, "path": None, "headers": {}}],
        }
    }
    assert spec["steps"][2] == {"pause": {"duration": 600.0}}
    assert "mirroring" in required_capabilities(spec)
    assert "every request" in describe_steps(spec)[1]


def test_blue_green_runs_the_new_release_full_size_without_traffic_for_the_iterations():
    spec = normalise(with_analysis(interval="1m", threshold=2, iterations=10, metrics=METRICS))

    assert spec["steps"] == [
        {"set_canary_scale": {"weight": 100}},
        {"pause": {"duration": 600.0}},
    ]


def test_confirm_webhooks_are_gates_that_wait_for_a_person():
    # usage/webhooks.md, "Manual Gating"
    hooks = [
        {
            "name": "gate",
            "type": "confirm-rollout",
            "url": "http://flagger-loadtester.test/gate/check",
        },
        {
            "name": "ask",
            "type": "confirm-promotion",
            "url": "http://flagger-loadtester.test/gate/check",
        },
    ]
    spec = normalise(with_analysis(interval="1m", stepWeight=50, webhooks=hooks))

    assert spec["steps"][0] == {"pause": {}}
    assert spec["steps"][-1] == {"pause": {}}
    assert spec["steps"][1:-1] == [
        {"set_weight": 50},
        {"pause": {"duration": 60.0}},
        {"set_weight": 100},
        {"pause": {"duration": 60.0}},
    ]


def test_the_old_v1alpha_spelling_reads_the_same():
    old = copy.deepcopy(without_load_test(PODINFO))
    analysis = old["spec"].pop("analysis")
    analysis["metrics"] = [
        {"name": "request-success-rate", "threshold": 99, "interval": "1m"},
        {"name": "request-duration", "threshold": 500, "interval": "30s"},
    ]
    old["spec"]["canaryAnalysis"] = analysis
    old["apiVersion"] = "flagger.app/v1alpha3"

    assert normalise(old) == normalise(without_load_test(PODINFO))


# --- what is refused, at the key written, never "unknown" for Flagger's own keys ---------------


def test_a_load_test_webhook_is_called_every_interval_beside_the_metrics():
    spec = normalise(PODINFO)

    analysis = spec["analysis"]
    assert analysis["templates"] == ["request-metrics", "flagger-rollout-hooks"]
    assert analysis["failure_limit"] == 9 and analysis["interval"] == 60.0  # threshold, interval
    args = analysis["per_template"]["flagger-rollout-hooks"]["args"]
    assert args["phase"] == "Progressing"
    assert json.loads(args["hooks"]) == [
        {
            "name": "load-test",
            "url": "http://flagger-loadtester.test/",
            "timeout": 10.0,
            "metadata": {"cmd": "hey -z 1m -q 10 -c 2 http://podinfo-canary.test:9898/"},
            "canary": "podinfo",
            "namespace": "default",
        }
    ]


def test_pre_rollout_hooks_gate_the_first_step_and_the_background_analysis_waits_for_them():
    hooks = [
        {"name": "gate", "type": "confirm-rollout", "url": "http://x/gate"},
        {"name": "smoke", "type": "pre-rollout", "url": "http://x/smoke", "timeout": "15s"},
    ]
    spec = normalise(
        with_analysis(
            stepWeight=50, threshold=2, interval="30s", webhooks=hooks, metrics=METRICS[:1]
        )
    )

    assert spec["steps"][0] == {"pause": {}}
    gate = spec["steps"][1]["analysis"]
    assert (gate["template"], gate["failure_limit"], gate["interval"]) == (
        "flagger-pre-rollout-hooks",
        1,
        30.0,
    )
    assert json.loads(gate["args"]["hooks"])[0]["timeout"] == 15.0
    assert spec["steps"][2] == {"set_weight": 50}
    assert spec["analysis"]["start_at_step"] == 2


def test_a_rollback_hook_rolls_back_at_its_first_2xx_whatever_the_threshold():
    hooks = [{"name": "stop", "type": "rollback", "url": "http://x/stop"}]
    analysis = normalise(with_analysis(stepWeight=50, threshold=5, webhooks=hooks))["analysis"]

    assert analysis["template"] == "flagger-rollback-hooks" and analysis["failure_limit"] == 4
    assert analysis["per_template"]["flagger-rollback-hooks"]["failure_limit"] == 0


@pytest.mark.parametrize(
    ("hook", "path", "words"),
    [
        ({"url": "ftp://x"}, "url", "http:// or https://"),
        ({"url": "http://x/", "timeout": "5m"}, "timeout", "at most 60s"),
        ({"url": "http://x/", "metadata": {"cmd": ["a"]}}, "metadata", "name -> text"),
        ({"url": "http://x/", "headers": {}}, "headers", "unknown key"),
    ],
)
def test_a_webhooks_mistakes_are_named_at_its_keys(hook, path, words):
    errors = errors_of(with_analysis(stepWeight=10, webhooks=[{"name": "w", **hook}]))
    assert words in errors[f"spec.analysis.webhooks[0].{path}"], errors


@pytest.mark.parametrize("kind", ["confirm-traffic-increase"])
def test_the_other_webhook_types_are_named_as_not_supported_yet(kind):
    errors = errors_of(
        with_analysis(stepWeight=10, webhooks=[{"name": "w", "type": kind, "url": "http://x/"}])
    )
    assert "not supported yet" in errors["spec.analysis.webhooks[0].type"]


NOT_FOUND = {  # usage/metrics.md, "Custom metrics": the 404s percentage of the canary
    "name": "404s percentage",
    "templateRef": {"name": "not-found-percentage", "namespace": "istio-system"},
    "thresholdRange": {"max": 5},
    "interval": "1m",
}


def test_a_custom_metric_template_runs_beside_the_built_in_ones_with_its_own_arguments():
    manifest = with_analysis(stepWeight=10, threshold=3, metrics=[METRICS[0], NOT_FOUND])
    manifest["metadata"] = {"name": "podinfo", "namespace": "test"}

    analysis = normalise(manifest)["analysis"]

    assert analysis["templates"] == ["request-metrics", "not-found-percentage"]
    assert analysis["args"] == {} and analysis["failure_limit"] == 2
    assert analysis["per_template"] == {
        "request-metrics": {"args": {"max-error-rate": "0.01"}},
        "not-found-percentage": {
            "args": {"namespace": "test", "max": "5", "metric-interval": "1m"}
        },
    }


def test_template_variables_and_both_bounds_are_passed():
    metric = {
        **NOT_FOUND,
        "thresholdRange": {"min": 10, "max": 1000},
        "templateVariables": {"direction": "inbound", "quantile": 0.99},
    }
    analysis = normalise(with_analysis(stepWeight=10, metrics=[metric]))["analysis"]

    assert analysis["template"] == "not-found-percentage" and "templates" not in analysis
    assert analysis["per_template"]["not-found-percentage"]["args"] == {
        "namespace": "default",
        "min": "10",
        "max": "1000",
        "metric-interval": "1m",
        "variables.direction": "inbound",
        "variables.quantile": "0.99",
    }


@pytest.mark.parametrize(
    ("change", "path", "words"),
    [
        ({"thresholdRange": None}, "thresholdRange", "is required"),
        ({"thresholdRange": {"max": "5"}}, "thresholdRange.max", "must be a number"),
        ({"thresholdRange": {"min": 9, "max": 5}}, "thresholdRange", "min is above max"),
        ({"templateRef": {"name": "Not A Name"}}, "templateRef.name", "MetricTemplate's name"),
        ({"templateRef": {"name": "x", "kind": "y"}}, "templateRef.kind", "unknown key"),
        ({"interval": "a minute"}, "interval", "Prometheus duration"),
        ({"templateVariables": ["a"]}, "templateVariables", "name -> value"),
    ],
)
def test_a_custom_metrics_mistakes_are_named_at_its_keys(change, path, words):
    metric = {k: v for k, v in {**NOT_FOUND, **change}.items() if v is not None}
    errors = errors_of(with_analysis(stepWeight=10, metrics=[metric]))

    assert words in errors[f"spec.analysis.metrics[0].{path}"], errors


def test_one_template_for_two_metrics_and_variables_on_a_built_in_are_refused():
    twice = errors_of(with_analysis(stepWeight=10, metrics=[NOT_FOUND, {**NOT_FOUND, "name": "b"}]))
    assert "used by another metric" in twice["spec.analysis.metrics[1].templateRef.name"]
    builtin = {**METRICS[0], "templateVariables": {"a": "b"}}
    wrong = errors_of(with_analysis(stepWeight=10, metrics=[builtin]))
    assert "templateRef only" in wrong["spec.analysis.metrics[0].templateVariables"]


@pytest.mark.parametrize(
    ("analysis", "path", "words"),
    [
        ({"stepWeight": 60, "maxWeight": 50}, "spec.analysis.stepWeight", "above maxWeight"),
        ({"stepWeight": 150}, "spec.analysis.stepWeight", "between 1 and 100"),
        ({"stepWeights": [10, 5]}, "spec.analysis.stepWeights", "must increase"),
        ({"stepWeight": 10, "threshold": 0}, "spec.analysis.threshold", "whole number >= 1"),
        ({"stepWeight": 10, "iterations": 3}, "spec.analysis.iterations", "not both"),
        ({"interval": "soon", "stepWeight": 10}, "spec.analysis.interval", "invalid duration"),
        ({"threshold": 5}, "spec.analysis", "needs stepWeight"),
        (
            {"stepWeight": 10, "stepWeightPromotion": 100},
            "spec.analysis.stepWeightPromotion",
            "not supported",
        ),
        (
            {"stepWeight": 10, "sessionAffinity": {"cookieName": "x"}},
            "spec.analysis.sessionAffinity",
            "not supported",
        ),
        ({"stepWeight": 10, "stepWieght": 5}, "spec.analysis.stepWieght", "unknown key"),
        (
            {
                "stepWeight": 10,
                "metrics": [{"name": "request-success-rate", "thresholdRange": {"min": 120}}],
            },
            "spec.analysis.metrics[0].thresholdRange.min",
            "percentage",
        ),
        (
            {"stepWeight": 10, "metrics": [{"name": "request-duration"}]},
            "spec.analysis.metrics[0].thresholdRange",
            "is required",
        ),
    ],
)
def test_flagger_mistakes_are_named_at_flaggers_key(analysis, path, words):
    errors = errors_of(with_analysis(**analysis))

    assert path in errors, errors
    assert words in errors[path]


def test_our_readers_messages_come_back_at_flaggers_keys():
    """What our reader refuses (a header match value, a mirror percentage, a deadline) is said in
    the same words as for our own spec, at the key the Flagger user wrote."""
    ab = with_analysis(iterations=3, match=[{"headers": {"x-canary": {"exact": 1}}}])
    ours = {
        "kind": "canary",
        "steps": [
            {
                "set_header_route": {
                    "name": "h",
                    "match": [{"header": "x-canary", "value": {"exact": 1}}],
                }
            }
        ],
    }

    said = errors_of(ours)["steps[0].set_header_route.match[0].value"]
    assert errors_of(ab) == {"spec.analysis.match[0].headers.x-canary": said}
    mirror = errors_of(with_analysis(iterations=3, mirror=True, mirrorWeight=120))
    assert mirror == {
        "spec.analysis.mirrorWeight": "must be a whole number between 0 and 100, got 120"
    }
    deadline = {**with_analysis(stepWeight=10)}
    deadline["spec"] = {**deadline["spec"], "progressDeadlineSeconds": -3}
    assert list(errors_of(deadline)) == ["spec.progressDeadlineSeconds"]


@pytest.mark.parametrize(("key", "value"), [("skipAnalysis", True), ("suspend", True)])
def test_unsupported_canary_fields_are_named(key, value):
    manifest = without_load_test(PODINFO)
    manifest["spec"][key] = value
    errors = errors_of(manifest)

    assert "not supported" in errors[f"spec.{key}"]


def test_skip_analysis_false_and_kubernetes_objects_are_accepted():
    manifest = copy.deepcopy(AB_TEST)
    manifest["spec"].update(
        skipAnalysis=False, provider="istio", revertOnDeletion=True, ingressRef={"name": "x"}
    )
    assert normalise(manifest)["kind"] == "canary"


def test_a_manifest_that_is_not_a_canary_is_refused():
    errors = errors_of({"apiVersion": "flagger.app/v1beta1", "kind": "MetricTemplate", "spec": {}})
    assert "must be a Canary" in errors["kind"]
