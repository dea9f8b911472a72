"""``measurement_retention`` (Argo's ``measurementRetention``) on a stored run: only the latest
measurements of the metric are kept in Postgres while the verdict is the one of all of them;
``consecutive_success_limit`` ends the metric early. The metric is a job (a real process, the
local fleet's job runner) so nothing here is faked."""

from __future__ import annotations

import pytest

from releases.analysis import runs, templates
from releases.models.analysis import Measurement
from strategies.analysis import argo_template
from tests import factories

pytestmark = pytest.mark.django_db


def manifest(**extra) -> dict:
    metric = {
        "name": "smoke",
        "interval": "100ms",
        "count": 6,
        "provider": {
            "job": {
                "spec": {
                    "template": {
                        "spec": {"containers": [{"name": "t", "image": "x", "command": ["true"]}]}
                    }
                }
            }
        },
        **extra.pop("metric", {}),
    }
    return {
        "kind": "AnalysisTemplate",
        "metadata": {"name": "smoke"},
        "spec": {"metrics": [metric], **extra},
    }


def test_only_the_latest_measurements_are_stored_and_the_run_still_counts_all(target):
    spec = argo_template.normalise(manifest(measurementRetention=[{"metricName": "*", "limit": 2}]))
    assert spec["metrics"][0]["measurement_retention"] == 2
    templates.save_template("smoke", spec)
    deployment = factories.make_deployment(target, "2.0")

    verdict = runs.run_analysis(deployment, "smoke", key="step-1", wait=True, timeout=20)

    assert verdict.decision == "pass", verdict.reason
    kept = list(
        Measurement.objects.filter(run__deployment=deployment).values_list("index", flat=True)
    )
    assert sorted(kept) == [4, 5]
    assert verdict.metrics["smoke"]["measurements"] == 6


def test_the_references_retention_replaces_the_templates(target):
    templates.save_template("smoke", argo_template.normalise(manifest()))
    deployment = factories.make_deployment(target, "2.0")
    run = runs.start(
        deployment, "smoke", key="step-1", overrides={"measurement_retention": {"smoke": 3}}
    )
    assert run.spec["metrics"][0]["measurement_retention"] == 3


def test_consecutive_successes_end_the_metric_before_its_count(target):
    spec = argo_template.normalise(
        manifest(metric={"consecutiveSuccessLimit": 2, "failureLimit": -1})
    )
    templates.save_template("smoke", spec)
    deployment = factories.make_deployment(target, "2.0")

    verdict = runs.run_analysis(deployment, "smoke", key="step-1", wait=True, timeout=20)

    assert verdict.decision == "pass", verdict.reason
    assert Measurement.objects.filter(run__deployment=deployment).count() == 2
