"""docs/compatibility.md is kept true: each table lists every field Argo Rollouts has in that
place (the lists the translators themselves use), and each field's status is what pasting a spec
with it does: supported / translated / ignored are accepted, not supported is refused at that
key with a message that is not "unknown key"."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from strategies import (
    argo_canary,
    argo_rollout,
    flagger,
    spec_analysis,
    spec_bluegreen,
    spec_experiment,
)
from strategies.analysis import argo_template, flagger_template
from strategies.spec import SpecError, normalise

DOC = Path(__file__).resolve().parents[2] / "docs" / "compatibility.md"
ROW = re.compile(r"^\| `([^`]+)` \| (supported|translated|ignored|not supported) \|")
ACCEPTED = ("supported", "translated", "ignored")


def tables() -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    section = None
    for line in DOC.read_text().splitlines():
        if line.startswith("### "):
            section = line[4:].strip()
            out[section] = {}
        elif section and (match := ROW.match(line)):
            out[section][match.group(1)] = match.group(2)
    return {section: rows for section, rows in out.items() if rows}  # prose sections have none


TABLES = tables()
FIELDS = {
    "Rollout spec": argo_rollout.SPEC_FIELDS,
    "canary": argo_canary.CANARY_FIELDS,
    "canary steps": argo_canary.ARGO_FIELDS,
    "experiment step": spec_experiment.ARGO_STEP_FIELDS,
    "experiment template": spec_experiment.ARGO_TEMPLATE_FIELDS,
    "experiment analysis": spec_experiment.ARGO_ANALYSIS_FIELDS,
    "blueGreen": (
        "previewReplicaCount",
        "scaleDownDelaySeconds",
        "autoPromotionSeconds",
        "autoPromotionEnabled",
        *spec_bluegreen.ARGO_ANALYSIS,
        *spec_bluegreen.ARGO_IGNORED,
        *spec_bluegreen.ARGO_UNSUPPORTED,
    ),
    "analysis reference": (
        "templates",
        "templateName",
        "args",
        "startingStep",
        "measurementRetention",
        *spec_analysis.ARGO_IGNORED,
        *spec_analysis.ARGO_UNSUPPORTED,
    ),
    "AnalysisTemplate metric": argo_template.METRIC_FIELDS,
    "AnalysisTemplate spec": argo_template.SPEC_FIELDS,
    "metric providers": ("prometheus", "web", "job", *argo_template.PROVIDERS_LATER),
    "Flagger Canary spec": flagger.SPEC_FIELDS,
    "Flagger analysis": flagger.ANALYSIS_FIELDS,
    "Flagger metrics": (*flagger.BUILTIN_METRICS, "templateRef"),
    "Flagger webhook types": flagger.WEBHOOK_TYPES,
    "Flagger MetricTemplate": (
        *flagger_template.SPEC_FIELDS,
        *(f"provider.{k}" for k in flagger_template.PROVIDER_FIELDS if k != "type"),
    ),
    "Flagger metric providers": ("prometheus", *flagger_template.PROVIDERS_LATER),
}
FLAGGER_METRICS = {
    "request-success-rate": {"name": "request-success-rate", "thresholdRange": {"min": 99}},
    "request-duration": {"name": "request-duration", "thresholdRange": {"max": 500}},
    "templateRef": {"name": "x", "templateRef": {"name": "x"}, "thresholdRange": {"max": 5}},
}
REF = {"templates": [{"templateName": "errors"}]}
SAMPLES = {
    "Rollout spec": {
        "strategy": {"canary": {"steps": [{"setWeight": 5}]}},
        "replicas": 3,
        "minReadySeconds": 5,
        "progressDeadlineSeconds": 60,
        "progressDeadlineAbort": True,
        "rollbackWindow": {"revisions": 2},
        "paused": True,
        "selector": {},
        "template": {},
        "workloadRef": {},
        "revisionHistoryLimit": 2,
        "analysis": {"successfulRunHistoryLimit": 3},
        "restartAt": "2026-01-01T00:00:00Z",
    },
    "canary": {
        "steps": [{"setWeight": 5}],
        "analysis": REF,
        "maxSurge": 1,
        "maxUnavailable": 0,
        "dynamicStableScale": True,
        "scaleDownDelaySeconds": 30,
        "scaleDownDelayRevisionLimit": 1,
        "abortScaleDownDelaySeconds": 30,
        "minPodsPerReplicaSet": 2,
        "replicaProgressThreshold": {"type": "Percent", "value": 90},
    },
    "canary steps": {
        "setWeight": 5,
        "pause": {"duration": 10},
        "setCanaryScale": {"replicas": 1},
        "analysis": REF,
        "setHeaderRoute": {
            "name": "h",
            "match": [{"headerName": "X", "headerValue": {"exact": "1"}}],
        },
        "setMirrorRoute": {"name": "m", "percentage": 10},
        "experiment": {"templates": [{"name": "c", "specRef": "canary"}]},
        "plugin": {"name": "x"},
    },
    "experiment step": {
        "duration": "5m",
        "templates": [{"name": "c", "specRef": "canary"}],
        "analyses": [{"name": "a", "templateName": "errors"}],
        "analysisRunMetadata": {"labels": {}},
        "dryRun": [{"metricName": "x"}],
    },
    "experiment template": {
        "name": "c",
        "specRef": "canary",
        "replicas": 2,
        "weight": 5,
        "selector": {"matchLabels": {"app": "x"}},
        "metadata": {"labels": {"app": "x"}},
        "template": {"spec": {}},
        "service": {"name": "x"},
        "minReadySeconds": 5,
    },
    "experiment analysis": {
        "name": "a",
        "templateName": "errors",
        "clusterScope": True,
        "args": [{"name": "hash", "value": "{{templates.c.podTemplateHash}}"}],
        "requiredForCompletion": True,
    },
    "blueGreen": {
        "previewReplicaCount": 1,
        "scaleDownDelaySeconds": 10,
        "autoPromotionSeconds": 30,
        "autoPromotionEnabled": False,
        "prePromotionAnalysis": REF,
        "postPromotionAnalysis": REF,
        "scaleDownDelayRevisionLimit": 1,
        "abortScaleDownDelaySeconds": 10,
    },
    "analysis reference": {
        "templates": [{"templateName": "a"}, {"clusterTemplateName": "b"}],
        "templateName": "a",
        "args": [{"name": "max", "value": "0.05"}],
        "startingStep": 0,
        "name": "run",
        "analysisRunMetadata": {"labels": {}},
        "dryRun": [{"metricName": "x"}],
        "measurementRetention": [{"metricName": "x", "limit": 5}],
    },
    "Flagger Canary spec": {
        "analysis": {"stepWeight": 10},
        "canaryAnalysis": {"stepWeight": 10},
        "progressDeadlineSeconds": 60,
        "targetRef": {"kind": "Deployment", "name": "podinfo"},
        "service": {"port": 9898},
        "autoscalerRef": {"kind": "HorizontalPodAutoscaler", "name": "podinfo"},
        "ingressRef": {"kind": "Ingress", "name": "podinfo"},
        "upstreamRef": {"kind": "Upstream", "name": "podinfo"},
        "routeRef": {"kind": "HTTPRoute", "name": "podinfo"},
        "provider": "istio",
        "revertOnDeletion": True,
        "suspend": True,
        "skipAnalysis": True,
    },
    "Flagger analysis": {
        "interval": "30s",
        "threshold": 5,
        "maxWeight": 50,
        "stepWeight": 10,
        "stepWeights": [5, 10, 20],
        "iterations": 10,
        "match": [{"headers": {"x-canary": {"exact": "insider"}}}],
        "mirror": True,
        "mirrorWeight": 50,
        "metrics": [FLAGGER_METRICS["request-success-rate"]],
        "webhooks": [{"name": "g", "type": "confirm-rollout", "url": "http://x/"}],
        "stepWeightPromotion": 100,
        "alerts": [{"name": "a", "severity": "error"}],
        "primaryReadyThreshold": 100,
        "canaryReadyThreshold": 100,
        "sessionAffinity": {"cookieName": "flagger-cookie"},
    },
    "AnalysisTemplate metric": {
        "name": "m",
        "interval": "1m",
        "initialDelay": "30s",
        "count": 3,
        "successCondition": "result[0] < 0.05",
        "failureCondition": "result[0] > 0.5",
        "failureLimit": 1,
        "maxFailures": 1,
        "inconclusiveLimit": 1,
        "consecutiveErrorLimit": 2,
        "provider": {"prometheus": {"address": "http://127.0.0.1:9090", "query": "up"}},
        "consecutiveSuccessLimit": 2,
    },
    "AnalysisTemplate spec": {
        "args": [{"name": "max", "value": "0.05"}],
        "metrics": [],
        "dryRun": [{"metricName": "m"}],
        "measurementRetention": [{"metricName": "*", "limit": 20}],
    },
}


def paste(section: str, field: str) -> list[tuple[str, str]]:
    """The errors of a spec using ``field`` of ``section`` as Argo's docs show it ([] if none)."""
    value = SAMPLES.get(section, {}).get(field, {})
    try:
        if section in ("Flagger MetricTemplate", "Flagger metric providers"):
            flagger_template.normalise(metric_template(section, field))
        elif section.startswith("Flagger"):
            normalise(flagger_sample(section, field))
        elif section == "Rollout spec":
            spec = {"strategy": SAMPLES[section]["strategy"], field: value}
            normalise({"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "spec": spec})
        elif section == "canary":
            steps = {} if field in ("maxSurge", "maxUnavailable") else {"steps": [{"setWeight": 5}]}
            normalise({"canary": {**steps, field: value}})
        elif section == "canary steps":
            normalise({"canary": {"steps": [{"setWeight": 5}, {field: value}]}})
        elif section.startswith("experiment"):
            normalise(
                {
                    "canary": {
                        "steps": [{"setWeight": 5}, {"experiment": experiment(section, field)}]
                    }
                }
            )
        elif section == "blueGreen":
            normalise({"blueGreen": {field: value}, "replicas": 2})
        elif section == "analysis reference":
            ref = (
                {field: value} if field in ("templates", "templateName") else {**REF, field: value}
            )
            normalise({"canary": {"steps": [{"setWeight": 5}], "analysis": ref}})
        elif section == "AnalysisTemplate spec":
            metric = {k: SAMPLES["AnalysisTemplate metric"][k] for k in ("name", "provider")}
            metric["successCondition"] = "result[0] < 0.05"
            spec = {"metrics": [metric]}
            if field != "metrics":
                spec[field] = SAMPLES[section][field]
            argo_template.normalise({"kind": "AnalysisTemplate", "spec": spec})
        elif section == "AnalysisTemplate metric":
            metric = {k: SAMPLES[section][k] for k in ("name", "provider", "successCondition")}
            if field in ("successCondition", "failureCondition"):
                metric.pop("successCondition")
            argo_template.normalise(
                {
                    "kind": "AnalysisTemplate",
                    "spec": {"metrics": [{**metric, field: SAMPLES[section][field]}]},
                }
            )
        else:
            provider = SAMPLES["AnalysisTemplate metric"]["provider"]["prometheus"]
            if field == "web":
                provider = {"url": "http://127.0.0.1:8080/health", "jsonPath": "{$.ok}"}
            if field == "job":
                container = {
                    "name": "t",
                    "image": "alpine",
                    "command": ["sh", "-c"],
                    "args": ["true"],
                }
                provider = {"spec": {"template": {"spec": {"containers": [container]}}}}
            metric = {
                "name": "m",
                "successCondition": "result < 1",
                "provider": {field: provider if field in ("prometheus", "web", "job") else {}},
            }
            argo_template.normalise({"kind": "AnalysisTemplate", "spec": {"metrics": [metric]}})
    except SpecError as exc:
        return [(e.path, e.message) for e in exc.errors]
    return []


def metric_template(section: str, field: str) -> dict:
    """A Flagger MetricTemplate using ``field`` of ``section`` as Flagger's docs show it."""
    provider: dict = {"type": "prometheus", "address": "http://prometheus:9090"}
    if section == "Flagger metric providers":
        provider = {"type": field}
    elif field == "provider.secretRef":
        provider["secretRef"] = {"name": "prom-auth"}
    elif field == "provider.insecureSkipVerify":
        provider["insecureSkipVerify"] = True
    query = 'sum(rate(http_requests_total{ns="{{ namespace }}"}[{{ interval }}]))'
    return {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "MetricTemplate",
        "metadata": {"name": "m"},
        "spec": {"provider": provider, "query": query},
    }


def experiment(section: str, field: str) -> dict:
    """An Argo experiment step using ``field`` of ``section`` as Argo's docs show it."""
    value = SAMPLES[section][field]
    template, analysis = {"name": "c", "specRef": "canary"}, {"name": "a", "templateName": "errors"}
    if section == "experiment step":
        return {"templates": [template], field: value}
    if section == "experiment template":
        return {"templates": [{**template, field: value}]}
    return {"templates": [template], "analyses": [{**analysis, field: value}]}


def flagger_sample(section: str, field: str) -> dict:
    """A Flagger Canary using ``field`` of ``section`` as Flagger's docs show it."""
    spec: dict = {"analysis": {"stepWeight": 10}}
    if section == "Flagger Canary spec":
        spec = (
            {field: SAMPLES[section][field]}
            if "nalysis" in field
            else {**spec, field: SAMPLES[section][field]}
        )
    elif section == "Flagger analysis":
        modes = {
            "iterations": {},
            "match": {"iterations": 3},
            "mirror": {"iterations": 3},
            "mirrorWeight": {"iterations": 3, "mirror": True},
            "stepWeights": {},
        }
        base = modes.get(field, {"stepWeight": 10})
        spec = {"analysis": {**base, field: SAMPLES[section][field]}}
    elif section == "Flagger metrics":
        spec = {"analysis": {"stepWeight": 10, "metrics": [FLAGGER_METRICS[field]]}}
    else:
        hook = {"name": "w", "type": field, "url": "http://flagger-loadtester.test/"}
        spec = {"analysis": {"stepWeight": 10, "webhooks": [hook]}}
    return {"apiVersion": "flagger.app/v1beta1", "kind": "Canary", "spec": spec}


def test_each_table_lists_every_field_argo_has_there():
    assert set(TABLES) == set(FIELDS)
    for section, fields in FIELDS.items():
        assert sorted(TABLES[section]) == sorted(set(fields)), section


@pytest.mark.parametrize(
    ("section", "field"), [(s, f) for s, rows in tables().items() for f in rows]
)
def test_each_fields_status_is_what_pasting_it_does(section, field):
    status = TABLES[section][field]
    errors = paste(section, field)
    if status in ACCEPTED:
        assert errors == [], (section, field, errors)
    else:
        assert errors, (section, field)
        assert all("unknown" not in message for _, message in errors), errors
        if section == "Flagger webhook types":  # the field is the value of "type"
            assert any(path.endswith("webhooks[0].type") for path, _ in errors), errors
        elif section == "Flagger metric providers":  # the value of the provider's "type"
            assert any(path == "spec.provider.type" for path, _ in errors), errors
        else:
            assert any(field in path for path, _ in errors), errors
