"""End to end on the local fleet, with a real fleet agent and a real Celery worker while a client
sends steady traffic: an Argo Rollouts Rollout with an ``experiment`` step, pasted as it is,
starts a fresh baseline (the old release) and a fresh canary (the new one) as two extra slots
beside the deployment's own, sends each its share of the requests, and measures the one against
the other (Kayenta-style: both fresh). A healthy canary passes and the rollout goes on; a canary
that fails half its requests fails the analysis, and the rollout rolls back. Either way the
experiment's slots are gone afterwards. And with two workers (their own Redis, beat and a
slowed target), the one holding the deployment SIGKILLed while the experiment starts: the other
carries it through, each experiment event once, no slot left."""

from __future__ import annotations

import time

import httpx
import pytest

from integrations.local.traffic import Traffic, failures

from .test_analysis import setup
from .test_argo_compat import ROLLOUT
from .test_canary import slots
from .test_rolling_deploy import wait_done

pytestmark = pytest.mark.e2e


def rollout(duration: str = "4s") -> dict:
    experiment = {
        "duration": duration,
        "templates": [
            {"name": "baseline", "specRef": "stable", "weight": 20},
            {"name": "canary", "specRef": "canary", "weight": 20},
        ],
        "analyses": [{"name": "errors", "templateName": "error-rate"}],
    }
    strategy = {"canary": {"steps": [{"experiment": experiment}]}}
    return {**ROLLOUT, "spec": {**ROLLOUT["spec"], "strategy": strategy}}


def deploy(api) -> dict:
    body = {"service": "shop", "environment": "dev", "version": "2.0.0", "strategy": rollout()}
    return api.call("post", "/deployments", body)


def experiment_slots(stack) -> dict:
    return {name: s for name, s in slots(stack).items() if name.startswith("exp-")}


def wait_experiment_running(stack, api, deployment_id) -> dict:
    """The deployment while its experiment takes requests (the page's split shows it)."""

    def seen():
        d = api.call("get", f"/deployments/{deployment_id}")
        over = d["state"] not in ("pending", "progressing")
        return d if d["weights"].get("experiment") == 40 or over else None

    return stack.wait_for(seen, timeout=60, interval=0.05, what="the experiment taking requests")


def test_an_experiment_with_a_healthy_canary_passes_then_its_slots_are_torn_down(stack):
    api, endpoint = setup(stack, {"sample": {"latency_ms": 5}})
    with Traffic(endpoint, rate=100, threads=4) as traffic:
        second = deploy(api)
        running = wait_experiment_running(stack, api, second["id"])
        assert running["weights"] == {"stable": 60, "canary": 0, "experiment": 40}, running
        during = experiment_slots(stack)
        done = wait_done(stack, api, second["id"], timeout=60)
        time.sleep(0.3)
    assert done["state"] == "succeeded", done
    assert failures(traffic.samples) == []
    pk = second["id"]
    assert {name: s.version for name, s in during.items()} == {
        f"exp-{pk}-0-baseline": "1.0.0",
        f"exp-{pk}-0-canary": "2.0.0",
    }
    [run] = done["analysis"]
    assert (run["key"], run["phase"], run["decision"]) == ("experiment-0-errors", "passed", "pass")
    [errors] = run["metrics"]
    assert errors["canary"]["total"] >= 20 and errors["baseline"]["total"] >= 20
    stack.wait_for(lambda: experiment_slots(stack) == {}, timeout=20, what="no experiment slot")
    target = api.call("get", "/services/shop/targets/dev")
    assert not any(name.startswith("exp-") for name in target["slots"])
    events = api.call("get", f"/deployments/{pk}/events")["items"]
    said = [e["message"] for e in events if e["kind"] == "experiment"]
    assert said == [
        "experiment started: its slots are starting",
        "experiment running: every slot is available",
        "experiment done: its slots are torn down",
    ]


def test_an_experiment_with_a_bad_canary_fails_and_rolls_back_leaving_no_slot(stack):
    api, endpoint = setup(stack, {"sample": {"latency_ms": 5, "error_rate": 0.5}})
    with Traffic(endpoint, rate=100, threads=4) as traffic:
        second = deploy(api)
        done = wait_done(stack, api, second["id"], timeout=60)
        time.sleep(0.5)
    assert done["state"] == "failed", done
    reason = done["failure_reason"]
    assert reason.startswith("analysis 'error-rate' (experiment-0-errors) failed: errors:"), reason
    assert done["weights"] == {"stable": 100, "canary": 0}
    [run] = done["analysis"]
    [errors] = run["metrics"]
    assert errors["canary"]["errors"] > 0 and errors["baseline"]["errors"] == 0
    # only the experiment's canary failed anyone: the deployment's own canary took no request
    assert {s.version for s in failures(traffic.samples)} == {"2.0.0"}
    stack.wait_for(lambda: experiment_slots(stack) == {}, timeout=20, what="no experiment slot")
    with httpx.Client(timeout=5) as client:
        after = {client.get(endpoint).headers["x-switchyard-version"] for _ in range(20)}
    assert after == {"1.0.0"}


def test_a_worker_killed_mid_experiment_is_resumed_by_the_other_without_repeats_or_leaks(
    transactional_db, settings
):
    """Two workers, every change to the target held 3 s (longer than the lease) on its way to
    the fleet agent, so the kill lands in the middle of a tick acting on the experiment."""
    from releases.models import Deployment, DeploymentEvent, State

    from .loop_stack import holder, loop_stack
    from .test_broker_restart import deploy as deploy_row
    from .test_broker_restart import finished
    from .test_canary import FAST_HEALTH
    from .test_lease_workers import SLOWED
    from .test_lease_workers import first_release as first_rolling

    strategy = {
        "kind": "canary",
        "stable_replicas": 2,
        "health": FAST_HEALTH,
        "progress_deadline": "120s",
        "steps": [
            {
                "experiment": {
                    "duration": "2s",
                    "templates": [
                        {"name": "baseline", "spec_ref": "stable", "weight": 10},
                        {"name": "canary", "spec_ref": "canary", "weight": 10},
                    ],
                }
            }
        ],
    }
    with loop_stack(
        settings, workers=("worker-a", "worker-b"), slow=SLOWED, log_name="experiment-kill"
    ) as stack:
        target = first_rolling(stack)
        d = deploy_row(target, "2.0.0", strategy)
        stack.wait_for(
            lambda: DeploymentEvent.objects.filter(deployment=d, kind="experiment").exists(),
            timeout=120,
            what="the experiment to start",
        )
        victim = stack.wait_for(lambda: holder(stack, d.pk), timeout=60, what="a tick under way")
        at_kill = Deployment.objects.get(pk=d.pk)
        stack.supervisor.kill(victim)  # SIGKILL mid-tick (its change is held in the proxy)
        done = finished(stack, d, timeout=240)
        left = {
            name
            for name, s in slots(stack, target.key).items()
            if name.startswith("exp-") and s.desired
        }
    running = (at_kill.progress or {}).get("experiment")
    print(f"\n{victim} killed at step {at_kill.step_index + 1}, experiment in progress: {running}")
    assert at_kill.state in (State.PENDING, State.PROGRESSING)  # killed before the end
    assert done.state == State.SUCCEEDED, done.message
    said = list(
        DeploymentEvent.objects.filter(deployment=d, kind="experiment")
        .order_by("id")
        .values_list("message", flat=True)
    )
    assert said == [
        "experiment started: its slots are starting",
        "experiment running: every slot is available",
        "experiment done: its slots are torn down",
    ]
    assert left == set()
