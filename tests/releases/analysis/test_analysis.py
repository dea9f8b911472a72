"""Running analyses for a deployment over a real fleet agent: a bad canary fails, a good one
passes, a starved one is inconclusive and says how much it saw; every verdict is stored with
its working."""

from __future__ import annotations

import pytest
from django.db import connection

from integrations.local.process import start_agent
from integrations.local.traffic import Traffic
from releases.analysis import runs, templates
from releases.errors import NotFound
from releases.live import runs as live_runs
from releases.models import DeploymentEvent, Target
from releases.models.analysis import AnalysisRun, Measurement
from tests import factories
from tests.integrations.fleet_helpers import Control

pytestmark = pytest.mark.django_db

TEMPLATE = {
    "metrics": [
        {
            "name": "errors",
            "query": "error_rate",
            "interval": "500ms",
            "count": 8,
            "min_samples": 20,
            "margin": 0.1,  # 10 points: shown within it after ~60 clean canary requests
            "max_duration": "10s",
        },
        {
            "name": "latency",
            "query": "latency",
            "test": "mann_whitney",
            "interval": "2s",
            "count": 2,
            "min_samples": 20,
        },
    ]
}


@pytest.fixture(scope="module")
def agent(tmp_path_factory):
    with start_agent(log_path=tmp_path_factory.mktemp("agent") / "agent.log") as agent:
        yield agent


@pytest.fixture
def canary(agent, settings, target):
    """A deployment of 2.0 over 1.0 on ``target``; ``run(sample, rate)`` puts 2.0 (with the
    sample app's faults) on the canary slot at 10% and sends ``rate`` requests a second."""
    settings.FLEET_URL, settings.FLEET_TOKEN = agent.url, agent.token
    stable = factories.make_release(target.service, "1.0")
    Target.objects.filter(pk=target.pk).update(stable_release=stable, stable_slot="blue")
    target.refresh_from_db()
    deployment = factories.make_deployment(target, "2.0")
    templates.save_template("canary-check", TEMPLATE)
    control = Control(agent)
    endpoint = control.create_target(target.key)
    # both sides answer in ~5 ms, as a real service does: with the sample app's bare sub-millisecond
    # answers, a fresh canary process's first fraction of a millisecond reads as a +20% shift
    # to the router's fine latency sketch
    control.ensure(target.key, "blue", "1.0", 1, {"latency_ms": 5})

    def run(sample: dict, rate: float):
        control.ensure(target.key, deployment.canary_slot, "2.0", 1, sample)
        control.wait_ready(target.key, deployment.canary_slot, 1)
        control.wait_ready(target.key, "blue", 1)
        control.set_weights(target.key, {"blue": 90, deployment.canary_slot: 10})
        with Traffic(endpoint, rate=rate, threads=4):
            return runs.run_analysis(
                deployment, "canary-check", key="step-2", step_index=2, wait=True, timeout=30
            )

    yield deployment, run
    control.http.delete(f"/targets/{target.key}")
    control.close()


def test_a_bad_canary_fails_fast_and_says_why(canary):
    deployment, run = canary
    verdict = run({"error_rate": 0.5}, rate=100)
    assert verdict.decision == "fail"
    assert "errors" in verdict.reason and "clearly worse" in verdict.reason
    stored = AnalysisRun.objects.get(deployment=deployment, key="step-2")
    assert stored.phase == "failed" and stored.finished_at is not None
    failed = Measurement.objects.filter(run=stored, metric="errors", phase="failed").get()
    assert failed.value["canary"]["errors"] > 0 and failed.value["baseline"]["errors"] == 0
    assert failed.value["interval"]["always_valid"]
    event = DeploymentEvent.objects.get(deployment=deployment, kind="analysis")
    assert event.data["decision"] == "fail" and event.data["key"] == "step-2"
    assert runs.verdict_of(deployment).runs["step-2"]["decision"] == "fail"


def test_a_good_canary_passes_with_a_score(canary):
    deployment, run = canary
    verdict = run({"latency_ms": 5}, rate=100)
    assert verdict.decision == "pass", verdict.reason
    assert verdict.score["score"] == 100
    shown = live_runs.analysis_list(deployment)[0]
    assert shown["decision"] == "pass" and shown["key"] == "step-2"
    latency = next(m for m in shown["metrics"] if m["name"] == "latency")
    assert latency["test"] == "mann_whitney" and latency["unit"] == "ms"
    assert latency["interval"] is not None or "same value" in latency["why"]
    assert set(latency["canary"]) >= {"count", "mean", "p50", "p95", "p99"}


def test_a_starved_canary_is_inconclusive_and_counts_what_it_saw(canary):
    deployment, run = canary
    verdict = run({}, rate=4)
    assert verdict.decision == "inconclusive"
    assert "Not enough data" in verdict.reason and "canary" in verdict.reason


def test_evaluate_ticks_every_running_analysis_and_stop_judges_what_was_seen(
    canary, django_assert_max_num_queries
):
    deployment, _ = canary
    runs.start(deployment, "canary-check", key="background")
    assert runs.verdict_of(deployment).decision == "running"
    # the agent has no traffic for this target: the first look opens the windows
    verdict = runs.evaluate(deployment)
    assert verdict.decision == "running" and verdict.next_at is not None
    runs.stop(deployment)
    final = runs.verdict_of(deployment)
    assert final.decision == "inconclusive"
    assert connection.vendor in ("postgresql", "sqlite")


def test_starting_twice_returns_the_running_analysis(canary):
    deployment, _ = canary
    first = runs.start(deployment, "canary-check", key="step-2")
    assert runs.start(deployment, "canary-check", key="step-2").pk == first.pk


def test_a_template_that_does_not_exist_or_lacks_arguments_is_refused(canary):
    deployment, _ = canary
    with pytest.raises(NotFound):
        runs.start(deployment, "nope", key="x")
    templates.save_template(
        "needs-args",
        {"args": [{"name": "limit"}], "metrics": [{"name": "m", "query": "latency"}]},
    )
    with pytest.raises(templates.InvalidTemplate) as caught:
        runs.start(deployment, "needs-args", key="x")
    assert caught.value.details["errors"][0]["path"] == "args.limit"
