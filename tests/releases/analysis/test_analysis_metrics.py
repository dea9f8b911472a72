"""Switchyard's own /metrics: deployments by outcome, their duration, the canary weight per
target, analysis verdicts and rollbacks by reason, computed from the database."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from releases.models import Deployment, State, Target
from releases.models.analysis import AnalysisRun
from tests import factories

pytestmark = pytest.mark.django_db


def ended(target, version, state, seconds):
    d = factories.make_deployment(target, version)
    now = timezone.now()
    Deployment.objects.filter(pk=d.pk).update(
        state=state, started_at=now - timedelta(seconds=seconds), finished_at=now
    )
    return d


def samples(text: str) -> dict[str, float]:
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


def test_it_reports_outcomes_durations_weights_verdicts_and_rollback_reasons(client, target, prod):
    ended(target, "1.0", State.SUCCEEDED, 20)
    ended(target, "1.1", State.SUCCEEDED, 200)
    bad = ended(target, "1.2", State.FAILED, 40)
    AnalysisRun.objects.create(
        deployment=bad,
        name="error-rate",
        key="step-2",
        spec={},
        phase="failed",
        started_at=timezone.now(),
    )
    ended(target, "1.3", State.ROLLED_BACK, 50)
    other = factories.make_target(target.service, prod)
    live = factories.make_deployment(other, "2.0")
    Deployment.objects.filter(pk=live.pk).update(
        state=State.PROGRESSING, weights={"stable": 75, "canary": 25}
    )

    response = client.get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    got = samples(response.content.decode())
    dev = 'service="api",environment="dev"'
    assert got[f'switchyard_deployments_total{{{dev},outcome="succeeded"}}'] == 2
    assert got[f'switchyard_deployments_total{{{dev},outcome="failed"}}'] == 1
    ok = f'{dev},outcome="succeeded"'
    assert got[f'switchyard_deployment_duration_seconds_bucket{{{ok},le="30"}}'] == 1
    assert got[f'switchyard_deployment_duration_seconds_bucket{{{ok},le="300"}}'] == 2
    assert got[f'switchyard_deployment_duration_seconds_bucket{{{ok},le="+Inf"}}'] == 2
    assert got[f"switchyard_deployment_duration_seconds_sum{{{ok}}}"] == pytest.approx(220, abs=2)
    assert got['switchyard_canary_weight{service="api",environment="prod"}'] == 25
    assert got[f"switchyard_canary_weight{{{dev}}}"] == 0
    assert got['switchyard_analysis_runs_total{template="error-rate",phase="failed"}'] == 1
    assert got[f'switchyard_rollbacks_total{{{dev},reason="analysis"}}'] == 1
    assert got[f'switchyard_rollbacks_total{{{dev},reason="operator"}}'] == 1
    assert (
        got['switchyard_deployments_active{service="api",environment="prod",state="progressing"}']
        == 1
    )
    assert Target.objects.count() == 2


def test_it_can_require_a_token(client, monkeypatch, db):
    monkeypatch.setenv("SWITCHYARD_METRICS_TOKEN", "s3cret")
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer s3cret"}).status_code == 200
