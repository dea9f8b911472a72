"""An analysis whose metric is a web endpoint (an Argo Rollouts ``web`` AnalysisTemplate, pasted
as it is) over a loopback JSON server: the run reads each arm's URL and judges Argo's
``successCondition`` on what the JSONPath selected -- pass for a healthy canary, fail for one
the endpoint reports as not ok."""

from __future__ import annotations

import pytest

from releases.analysis import runs, templates
from releases.models import Target
from strategies.analysis import argo_template
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
