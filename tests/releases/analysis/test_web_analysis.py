"""An analysis whose metric is a web endpoint (an Argo Rollouts ``web`` AnalysisTemplate, pasted
as it is) over a loopback JSON server: the run reads each arm's URL and judges Argo's
``successCondition`` on what the JSONPath selected -- pass for a healthy canary, fail for one
the endpoint reports as not ok; a secret argument (Argo's ``valueFrom.secretKeyRef``) reaches
the endpoint from the environment and is stored nowhere."""

from __future__ import annotations

import json

import pytest

from releases.analysis import runs, templates
from releases.models import Target
from releases.models.analysis import AnalysisRun, AnalysisTemplate, Measurement
from strategies.analysis import argo_template
from strategies.analysis.template import TemplateError, normalise, resolve_args
from tests import factories
from tests.integrations.metrics.test_web import ANSWERS, server  # noqa: F401 -- the fixture

pytestmark = pytest.mark.django_db


def web_template(url: str) -> dict:
    # argo-rollouts docs/analysis/web.md, with the slot as the endpoint's parameter
    return argo_template.normalise(
        {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "AnalysisTemplate",
            "metadata": {"name": "web-ok"},
            "spec": {
                "metrics": [
                    {
                        "name": "webmetric",
                        "interval": "200ms",
                        "count": 2,
                        "successCondition": "result == true",
                        "provider": {"web": {"url": url, "jsonPath": "{$.data.ok}"}},
                    }
                ]
            },
        }
    )


@pytest.fixture
def deployment(target):
    stable = factories.make_release(target.service, "1.0")
    Target.objects.filter(pk=target.pk).update(stable_release=stable, stable_slot="blue")
    target.refresh_from_db()
    return factories.make_deployment(target, "2.0")


def test_a_canary_the_endpoint_calls_not_ok_fails(server, deployment):  # noqa: F811
    assert deployment.canary_slot == "green"  # ANSWERS["green"] is not ok
    templates.save_template("web-ok", web_template(server + "/status?slot={{slot}}"))

    verdict = runs.run_analysis(deployment, "web-ok", key="step-1", wait=True, timeout=10)

    assert verdict.decision == "fail", verdict.reason
    assert ANSWERS["green"]["data"]["ok"] is False


def test_a_canary_the_endpoint_calls_ok_passes(server, deployment):  # noqa: F811
    # both arms read blue's answer: the canary is ok
    templates.save_template("web-ok", web_template(server + "/status?slot=blue&arm={{slot}}"))

    verdict = runs.run_analysis(deployment, "web-ok", key="step-1", wait=True, timeout=10)

    assert verdict.decision == "pass", verdict.reason


SECRET = "s3cret-token-value"


def secret_template(url: str) -> dict:
    return {
        "args": [{"name": "api-token", "secret": {"name": "status", "key": "token"}}],
        "metrics": [
            {
                "name": "webmetric",
                "provider": "web",
                "address": url,
                "query": "$.data.ok",
                "interval": "200ms",
                "count": 2,
                "success_condition": "canary == true",
            }
        ],
    }


def test_a_secret_argument_reaches_the_endpoint_and_is_never_stored(
    server,  # noqa: F811
    deployment,
    monkeypatch,
):
    from tests.integrations.metrics.test_web import Handler

    monkeypatch.setenv("SWITCHYARD_SECRET_STATUS_TOKEN", SECRET)
    # Argo's valueFrom.secretKeyRef, pasted as it is
    manifest = {
        "kind": "AnalysisTemplate",
        "spec": {
            "args": [
                {
                    "name": "api-token",
                    "valueFrom": {"secretKeyRef": {"name": "status", "key": "token"}},
                }
            ],
            "metrics": [
                {
                    "name": "webmetric",
                    "interval": "200ms",
                    "count": 2,
                    "successCondition": "result == true",
                    "provider": {
                        "web": {
                            "url": server + "/status?slot=blue&token={{args.api-token}}",
                            "jsonPath": "{$.data.ok}",
                        }
                    },
                }
            ],
        },
    }
    templates.save_template("web-secret", argo_template.normalise(manifest))
    Handler.seen.clear()

    verdict = runs.run_analysis(deployment, "web-secret", key="step-1", wait=True, timeout=10)

    assert verdict.decision == "pass", verdict.reason
    assert {s["query"]["token"][0] for s in Handler.seen} == {SECRET}
    stored = AnalysisRun.objects.get(deployment=deployment, key="step-1")
    kept = json.dumps([stored.args, stored.spec, stored.state, stored.reason])
    kept += json.dumps([m.value for m in Measurement.objects.filter(run=stored)])
    kept += json.dumps(list(AnalysisTemplate.objects.values_list("spec", flat=True)))
    assert SECRET not in kept
    assert stored.spec["args"][0]["secret"] == {"name": "status", "key": "token"}


def test_a_missing_secret_is_an_error_naming_where_it_was_looked_for(
    server,  # noqa: F811
    deployment,
    monkeypatch,
):
    monkeypatch.delenv("SWITCHYARD_SECRET_STATUS_TOKEN", raising=False)
    url = server + "/status?slot=blue&token={{args.api-token}}"
    templates.save_template("web-secret", secret_template(url))

    verdict = runs.run_analysis(deployment, "web-secret", key="step-1", wait=True, timeout=10)

    assert verdict.decision != "pass"
    said = json.dumps([verdict.reason, *Measurement.objects.values_list("value", flat=True)])
    assert "SWITCHYARD_SECRET_STATUS_TOKEN" in said


def test_a_secret_may_not_be_given_nor_written_into_a_condition():
    template = secret_template("http://127.0.0.1/s?t={{args.api-token}}")
    assert resolve_args(normalise(template), {}) == {}
    with pytest.raises(TemplateError) as given:
        resolve_args(normalise(template), {"api-token": "x"})
    assert "secret" in str(given.value)
    in_condition = {**template}
    in_condition["metrics"] = [
        {**template["metrics"][0], "success_condition": "canary == {{args.api-token}}"}
    ]
    with pytest.raises(TemplateError) as caught:
        normalise(in_condition)
    assert "is a secret" in str(caught.value)
