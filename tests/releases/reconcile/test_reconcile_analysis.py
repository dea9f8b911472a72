"""The reconcile loop and analysis, tick by tick in this process against a real fleet agent: runs
start after the routing they measure (their windows open in the same tick), a failed analysis
routes every request back to the old release right after the decision -- before anything is
recorded -- and rolls back, an inconclusive one pauses with the reason, the next tick comes when
the next measurement is due, a template deleted after validation fails the rollout, a command
landing while measuring wins, and the spec's templates are checked when it is validated."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from django.conf import settings as django_settings

from integrations.local.process import start_agent
from integrations.local.target import LocalTarget
from releases import actions
from releases.analysis import runs, templates
from releases.analysis.runs import Verdict
from releases.errors import InvalidSpec
from releases.live.presenters import deployment_dict
from releases.models import Deployment, DeploymentEvent, State
from releases.models.analysis import AnalysisRun, AnalysisTemplate
from releases.reconcile import tick
from tests import factories
from tests.releases.reconcile.test_reconcile_switch import deploy, live, tick_until

FAST_HEALTH = {"path": "/health", "interval": "100ms", "healthy_threshold": 2}
LOG = Path(django_settings.BASE_DIR) / "test-output" / "reconcile-analysis-fleet.log"
TEMPLATE = {
    "args": [{"name": "max", "value": "0.05"}, {"name": "service-tier"}],
    "metrics": [{"name": "errors", "query": "error_rate", "interval": "300ms", "count": 20}],
}
FAIL_REASON = "errors: The canary's error rate 50% is clearly worse than the baseline's 0%."


@pytest.fixture(scope="module")
def agent():
    LOG.parent.mkdir(parents=True, exist_ok=True)
    process = start_agent(log_path=LOG)
    yield process
    process.stop()


@pytest.fixture
def fleet(agent, settings, target):
    settings.FLEET_URL, settings.FLEET_TOKEN = agent.url, agent.token
    templates.save_template("error-rate", TEMPLATE)
    local = LocalTarget(target.key, {}, fleet_url=agent.url, token=agent.token)
    yield local
    local.delete()


class Recording:
    """The real target; every call written down with the deployment's state at that moment."""

    def __init__(self, inner):
        self.inner = inner
        self.deployment_id = None
        self.calls: list[tuple[str, object, str]] = []

    def __getattr__(self, name):
        method = getattr(self.inner, name)

        def call(*args, **kwargs):
            state = Deployment.objects.filter(pk=self.deployment_id).values_list("state").first()
            self.calls.append((name, args[0] if args else None, state[0] if state else ""))
            return method(*args, **kwargs)

        return call


@pytest.fixture
def recorded(fleet, monkeypatch):
    recording = Recording(fleet)
    monkeypatch.setattr(tick, "integration_for", lambda row: recording)
    return recording


class FakeAnalysis:
    """Stands in for ``releases.analysis.runs`` in the reconcile loop: runs decide as the test
    says."""

    def __init__(self):
        self.runs: dict[str, dict] = {}
        self.calls: list[tuple] = []
        self.next_in = 0.3

    def evaluate(self, deployment, now=None):
        self.calls.append(("evaluate",))
        runs = {key: dict(run) for key, run in self.runs.items()}
        running = any(run["decision"] == "running" for run in runs.values())
        next_at = time.time() + self.next_in if running else None
        return Verdict("running" if running else "pass", "", runs, next_at)

    def start(
        self, deployment, template, args=None, *, key, step_index=None, now=None, overrides=None
    ):
        self.calls.append(("start", key, template, args))
        self.runs.setdefault(
            key,
            {"decision": "running", "reason": "Measuring.", "template": template, "id": 1},
        )

    def stop(self, deployment, key=None, now=None):
        self.calls.append(("stop", key))

    def decide(self, key, decision, reason):
        self.runs[key].update(decision=decision, reason=reason)


@pytest.fixture
def fake(monkeypatch):
    fake = FakeAnalysis()
    for name in ("evaluate", "start", "stop"):
        monkeypatch.setattr(runs, name, getattr(fake, name))
    return fake


def canary_spec(*steps, **extra):
    return {
        "kind": "canary",
        "steps": list(steps),
        "stable_replicas": 2,
        "health": FAST_HEALTH,
        **extra,
    }


STEP = {"analysis": {"template": "error-rate", "args": {"service-tier": "gold"}}}


def test_a_failed_analysis_routes_back_before_anything_is_recorded_then_rolls_back(
    target, fleet, recorded, fake
):
    live(target)
    d = deploy(target, "2.0.0", canary_spec({"set_weight": 50}, STEP, {"set_weight": 100}))
    recorded.deployment_id = d.pk
    d = tick_until(d, lambda d: "step-1" in fake.runs, what="the analysis to start")
    assert ("start", "step-1", "error-rate", {"service-tier": "gold"}) in fake.calls
    assert d.weights == {"stable": 50, "canary": 50}

    fake.decide("step-1", "fail", FAIL_REASON)
    recorded.calls.clear()
    result = tick.tick(d.pk)
    d.refresh_from_db()
    stable, canary = d.stable_slot, d.canary_slot
    # status, then the decision, then at once every new request to the old release, while the
    # deployment still reads "progressing": nothing was recorded yet
    assert [(name, state) for name, _, state in recorded.calls] == [
        ("status", "progressing"),
        ("set_routing", "progressing"),
    ]
    assert recorded.calls[1][1].weights == {stable: 100, canary: 0}
    assert result.priority and result.wait == 0.0
    assert d.state == State.ROLLING_BACK
    assert d.failure_reason == f"analysis 'error-rate' (step 2) failed: {FAIL_REASON}"
    assert ("stop", None) in fake.calls  # whatever still measures is stopped

    d = tick_until(d, lambda d: not d.is_active, what="the rollback")
    assert d.state == State.FAILED
    assert fleet.status().routing.weights == {stable: 100, canary: 0}
    failure = DeploymentEvent.objects.filter(deployment=d, kind="failure").last()
    assert "errors" in failure.message and "error-rate" in failure.message


def test_an_inconclusive_analysis_pauses_with_the_reason_and_promote_continues(target, fleet, fake):
    live(target)
    d = deploy(target, "2.0.0", canary_spec({"set_weight": 50}, STEP, {"set_weight": 100}))
    d = tick_until(d, lambda d: "step-1" in fake.runs, what="the analysis to start")
    why = "errors: Not enough data yet: canary 4 of the 50 requests needed per side."
    fake.decide("step-1", "inconclusive", why)
    d = tick_until(d, lambda d: d.state == State.PAUSED, what="the pause")
    assert d.message.startswith(f"step 2 of 4: analysis inconclusive (step 2): {why}")
    actions.promote(factories.api_actor(), d.pk)
    d = tick_until(d, lambda d: d.state == State.SUCCEEDED, what="the promotion")


def test_the_next_tick_comes_when_the_next_measurement_is_due(target, fleet, fake):
    live(target)
    d = deploy(target, "2.0.0", canary_spec({"set_weight": 50}, STEP, {"set_weight": 100}))
    d = tick_until(d, lambda d: "step-1" in fake.runs, what="the analysis to start")
    fake.next_in = 0.3
    assert 0.2 <= tick.tick(d.pk).wait <= 0.3
    fake.next_in = 60.0  # a measurement a minute: the engine looks at least every 5 s meanwhile
    assert tick.tick(d.pk).wait == 5.0


def test_a_command_landing_while_measuring_wins(target, fleet, recorded, fake, monkeypatch):
    live(target)
    d = deploy(target, "2.0.0", canary_spec({"set_weight": 50}, STEP, {"set_weight": 100}))
    recorded.deployment_id = d.pk
    d = tick_until(d, lambda d: "step-1" in fake.runs, what="the analysis to start")
    measure = fake.evaluate

    def slow_measurement(deployment, now=None):
        actions.abort(factories.api_actor(), deployment.pk, reason="not now")
        return measure(deployment, now)

    monkeypatch.setattr(runs, "evaluate", slow_measurement)
    recorded.calls.clear()
    result = tick.tick(d.pk)
    assert result.changed_meanwhile and result.priority
    assert [name for name, _, _ in recorded.calls] == ["status"]  # nothing acted on
    d = tick_until(d, lambda d: not d.is_active, what="the abort")
    assert d.state == State.ABORTED


# --- with the real analysis -------------------------------------------------------------------


def test_a_run_starts_after_the_routing_it_measures_and_its_window_opens_in_that_tick(
    target, fleet, recorded
):
    live(target)
    d = deploy(target, "2.0.0", canary_spec({"set_weight": 50}, STEP, {"set_weight": 100}))
    recorded.deployment_id = d.pk
    d = tick_until(d, lambda d: d.analysis_runs.exists(), what="the analysis to start")
    run = AnalysisRun.objects.get(deployment=d)
    assert (run.key, run.step_index, run.name) == ("step-1", 1, "error-rate")
    assert run.args == {"max": "0.05", "service-tier": "gold"}
    assert run.state["metrics"]["errors"]["window_start"] is not None  # opened at once
    routed = [call for call in recorded.calls if call[0] == "set_routing"]
    assert routed[-1][1].weights == {d.stable_slot: 50, d.canary_slot: 50}
    shown = deployment_dict(d)["analysis"]
    assert [(r["key"], r["name"], r["phase"]) for r in shown] == [
        ("step-1", "error-rate", "running")
    ]
    assert shown[0]["metrics"][0]["name"] == "errors"
    actions.abort(factories.api_actor(), d.pk)
    d = tick_until(d, lambda d: not d.is_active, what="the abort")
    run.refresh_from_db()
    assert run.phase != "running" and run.stopped  # stopped with the deployment


def test_a_template_deleted_after_validation_fails_the_rollout(target, fleet):
    live(target)
    d = deploy(target, "2.0.0", canary_spec({"set_weight": 50}, STEP, {"set_weight": 100}))
    AnalysisTemplate.objects.filter(name="error-rate").delete()
    d = tick_until(d, lambda d: not d.is_active, what="the failure")
    assert d.state == State.FAILED
    assert d.failure_reason == (
        "analysis 'error-rate' (step 2) could not start: There is no analysis template "
        "'error-rate'."
    )
    status = fleet.status()
    assert status.routing.weights == {d.stable_slot: 100, d.canary_slot: 0}


# --- validating the spec ----------------------------------------------------------------------


def test_a_spec_naming_a_missing_template_or_leaving_out_an_argument_is_refused_by_path(db):
    templates.save_template("error-rate", TEMPLATE)
    raw = canary_spec(
        {"set_weight": 10},
        {"analysis": {"template": "nope"}},
        {"analysis": {"template": "error-rate"}},
        {"analysis": {"template": "error-rate", "args": {"service-tier": "gold", "extra": "1"}}},
    )
    with pytest.raises(InvalidSpec) as caught:
        actions.validate_strategy(raw)
    assert caught.value.details["errors"] == [
        {
            "path": "steps[1].analysis.template",
            "message": "there is no analysis template 'nope' (create it with PUT "
            "/api/v1/analysis-templates/nope)",
        },
        {
            "path": "steps[2].analysis.args.service-tier",
            "message": "is required (the template has no default)",
        },
        {"path": "steps[3].analysis.args.extra", "message": "is not an argument of this template"},
    ]
    assert str(caught.value).startswith(
        "The strategy is invalid at steps[1].analysis.template: there is no analysis template"
    )
    argo = {
        "replicas": 2,
        "canary": {
            "steps": [{"setWeight": 10}],
            "analysis": {"templates": [{"templateName": "nope"}]},
        },
    }
    with pytest.raises(InvalidSpec, match=r"at canary\.analysis\.templates\[0\]\.templateName"):
        actions.validate_strategy(argo)
    ok = actions.validate_strategy(
        canary_spec(
            {"set_weight": 10},
            {"analysis": {"template": "error-rate", "args": {"service-tier": 5}}},
        )
    )
    assert ok["steps"][1] == {"analysis": {"template": "error-rate", "args": {"service-tier": "5"}}}


def test_background_analysis_is_stopped_at_promotion_and_rolls_back_a_paused_rollout(
    target, fleet, fake
):
    live(target)
    background = {"template": "error-rate", "args": {"service-tier": "gold"}}
    spec = canary_spec({"set_weight": 50}, {"pause": {}}, analysis=background)
    d = deploy(target, "2.0.0", spec)
    d = tick_until(d, lambda d: d.state == State.PAUSED, what="the pause")
    assert "background" in fake.runs
    actions.promote(factories.api_actor(), d.pk)
    d = tick_until(d, lambda d: d.state == State.SUCCEEDED, what="the promotion")
    assert ("stop", "background") in fake.calls  # on the tick that routed 100%

    fake.runs.clear()
    d = deploy(target, "3.0.0", spec)
    d = tick_until(d, lambda d: d.state == State.PAUSED, what="the pause")
    fake.decide("background", "fail", FAIL_REASON)
    d = tick_until(d, lambda d: not d.is_active, what="the rollback")
    assert d.state == State.FAILED
    assert d.failure_reason == f"analysis 'error-rate' (background) failed: {FAIL_REASON}"
    assert fleet.status().routing.weights == {d.stable_slot: 100, d.canary_slot: 0}


def test_a_failed_post_promotion_analysis_switches_blue_green_back(target, fleet, fake):
    live(target)
    spec = {
        "kind": "blue_green",
        "replicas": 2,
        "preview_replicas": 1,
        "auto_promote": 0,
        "scale_down_delay": 0,
        "health": FAST_HEALTH,
        "post_promotion_analysis": {"template": "error-rate", "args": {"service-tier": "gold"}},
    }
    d = deploy(target, "2.0.0", spec)
    d = tick_until(d, lambda d: "post-promotion" in fake.runs, what="the switch")
    assert fleet.status().routing.weights == {d.stable_slot: 0, d.canary_slot: 100}
    assert fleet.status().slots[d.stable_slot].desired == 2  # kept while it measures
    fake.decide("post-promotion", "fail", FAIL_REASON)
    d = tick_until(d, lambda d: not d.is_active, what="the switch back")
    assert d.state == State.FAILED
    assert fleet.status().routing.weights == {d.stable_slot: 100, d.canary_slot: 0}
