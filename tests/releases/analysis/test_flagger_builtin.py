"""Flagger's built-in metrics run as the built-in template ``request-metrics`` (stored the first
time a run needs it), and a reference's ``failure_limit`` / ``interval`` (Flagger's threshold and
interval) replace the template's in the run that starts; a pasted Flagger Canary validates
against the stored templates through the API."""

from __future__ import annotations

import copy

import pytest

from releases.actions import validate_strategy
from releases.analysis import runs
from releases.errors import InvalidSpec
from releases.models.analysis import AnalysisTemplate
from strategies import flagger
from strategies.analysis.template import normalise
from tests import factories
from tests.strategies.test_flagger import PODINFO

pytestmark = pytest.mark.django_db


def test_the_builtin_template_is_stored_when_a_run_first_needs_it(target):
    assert not AnalysisTemplate.objects.filter(name=flagger.BUILTIN_TEMPLATE).exists()
    runs.start(factories.make_deployment(target, "2.0"), flagger.BUILTIN_TEMPLATE, key="b")

    template = AnalysisTemplate.objects.get(name=flagger.BUILTIN_TEMPLATE)
    assert template.spec == normalise(flagger.BUILTIN_TEMPLATE_SPEC)


def test_overrides_replace_every_metrics_failure_limit_and_interval(target):
    deployment = factories.make_deployment(target, "2.0")

    run = runs.start(
        deployment,
        flagger.BUILTIN_TEMPLATE,
        {"max-error-rate": "0.01", "max-duration": "500"},
        key="background",
        overrides={"failure_limit": 9, "interval": 30.0},
    )

    assert [(m["failure_limit"], m["interval"], m["step"]) for m in run.spec["metrics"]] == [
        (9, 30.0, 30.0),
        (9, 30.0, 30.0),
    ]
    assert run.spec["metrics"][0]["failure_condition"] == "canary > 0.01"
    plain = runs.start(deployment, flagger.BUILTIN_TEMPLATE, key="other")
    assert [m["failure_limit"] for m in plain.spec["metrics"]] == [0, 0]


def test_a_flagger_canary_validates_against_the_stored_templates():
    canary = copy.deepcopy(PODINFO)
    canary["spec"]["analysis"].pop("webhooks")

    spec = validate_strategy(canary, provider="local")
    assert spec["analysis"]["template"] == flagger.BUILTIN_TEMPLATE

    assert not AnalysisTemplate.objects.exists()  # validating stores nothing
    canary["spec"]["analysis"]["metrics"][0]["thresholdRange"]["min"] = 101
    with pytest.raises(InvalidSpec) as caught:
        validate_strategy(canary)
    assert caught.value.details["errors"][0]["path"] == (
        "spec.analysis.metrics[0].thresholdRange.min"
    )


def test_the_api_takes_a_load_test_webhook_and_names_a_missing_metric_template(client, admin):
    client.force_login(admin)
    response = client.post(
        "/api/v1/strategies/validate", {"strategy": PODINFO}, content_type="application/json"
    )

    assert response.status_code == 200, response.content
    analysis = response.json()["strategy"]["analysis"]
    assert analysis["templates"] == ["request-metrics", "flagger-rollout-hooks"]

    custom = copy.deepcopy(PODINFO)
    custom["spec"]["analysis"]["metrics"].append(
        {"name": "404s", "templateRef": {"name": "not-found"}, "thresholdRange": {"max": 5}}
    )
    missing = client.post(
        "/api/v1/strategies/validate", {"strategy": custom}, content_type="application/json"
    )
    assert missing.status_code == 422
    assert "not-found" in missing.json()["message"]
