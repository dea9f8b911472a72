"""End to end: a canary analysed by itself, with a real fleet agent and a real Celery worker while
a client sends steady traffic. A release that fails half its requests is caught by the analysis
step and rolled back by itself (all traffic on the old release, the reason naming the metric)
after a handful of failed requests; a good one promotes itself; one with too little traffic to
judge pauses for a person, saying how many requests it saw."""

from __future__ import annotations

import time
from datetime import datetime

import pytest

from integrations.local.traffic import Traffic, failures, settled_after

from .test_bluegreen import setup_service
from .test_canary import canary, first_release, wait_state
from .test_rolling_deploy import instance_versions, wait_done

pytestmark = pytest.mark.e2e

TEMPLATE = {
    "description": "the canary's error rate against the stable release's, every 500 ms for 5 s",
    "metrics": [
        {
            "name": "errors",
            "query": "error_rate",
            "interval": "500ms",
            "count": 10,
            "min_samples": 20,
            "margin": 0.2,  # shown within 20 points after ~50 clean canary requests
            "max_duration": "10s",
        }
    ],
}
STEPS = ({"set_weight": 10}, {"analysis": {"template": "error-rate"}}, {"set_weight": 50})


def setup(stack, artifact: dict):
    api = setup_service(versions=("1.0.0",))
    api.call("put", "/analysis-templates/error-rate", TEMPLATE)
    body = {"version": "2.0.0", "artifact": artifact, "commit": "def"}
    api.call("post", "/services/shop/releases", body)
    return api, first_release(stack, api)


def deploy(api, spec) -> dict:
    body = {"service": "shop", "environment": "dev", "version": "2.0.0", "strategy": spec}
    return api.call("post", "/deployments", body)


def wall(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def test_a_bad_release_rolls_itself_back_within_seconds(stack):
    api, endpoint = setup(stack, {"sample": {"latency_ms": 5, "error_rate": 0.5}})
    clock = time.time() - time.monotonic()  # wall clock = monotonic + clock
    with Traffic(endpoint, rate=100, threads=4) as traffic:
        second = deploy(api, canary(*STEPS))
        done = wait_done(stack, api, second["id"], timeout=40)
        time.sleep(1.0)
    samples = traffic.samples

    assert done["state"] == "failed", done
    reason = done["failure_reason"]
    assert reason.startswith("analysis 'error-rate' (step 2) failed: errors: The canary is clearly")
    assert done["weights"] == {"stable": 100, "canary": 0}
    target = api.call("get", "/services/shop/targets/dev")
    assert {s["version"]: s["weight"] for s in target["slots"].values() if s["weight"]} == {
        "1.0.0": 100
    }
    [run] = done["analysis"]
    assert (run["key"], run["phase"], run["decision"]) == ("step-1", "failed", "fail")
    [errors] = run["metrics"]
    assert errors["verdict"] == "failed" and errors["canary"]["errors"] > 0
    assert errors["baseline"]["errors"] == 0

    canary_answers = [s for s in samples if s.version == "2.0.0"]
    took_traffic = min(s.started for s in canary_answers) + clock
    verdict_at = wall(run["finished_at"])
    last_canary = max(s.started for s in canary_answers) + clock
    failed = failures(samples)
    assert all(s.version == "2.0.0" for s in failed)  # only the canary failed anyone
    assert len(failed) <= 30, f"{len(failed)} failed requests"
    assert verdict_at - took_traffic < 10.0
    assert last_canary - verdict_at < 1.0  # routed back right after the verdict
    assert settled_after(samples, verdict_at - clock + 1.0, "1.0.0") is not None
    print(
        f"\n[e2e figures] analysis rollback: requests={len(samples)} failed={len(failed)} "
        f"detected_after={1000 * (verdict_at - took_traffic):.0f}ms (from the canary's first "
        f"request) last_request_on_canary={1000 * (last_canary - verdict_at):.0f}ms after the "
        "verdict"
    )


def test_a_good_release_promotes_itself(stack):
    api, endpoint = setup(stack, {"sample": {"latency_ms": 5}})
    with Traffic(endpoint, rate=100, threads=4) as traffic:
        second = deploy(api, canary(*STEPS))
        done = wait_done(stack, api, second["id"], timeout=40)
        time.sleep(0.3)
    samples = traffic.samples

    assert done["state"] == "succeeded", done
    assert failures(samples) == []
    [run] = done["analysis"]
    assert (run["phase"], run["decision"]) == ("passed", "pass")
    assert run["score"]["score"] == 100
    [errors] = run["metrics"]
    assert errors["measurements"] == 10 and errors["canary"]["total"] >= 20
    assert instance_versions(stack, "shop.dev") == ["2.0.0"] * 2
    events = api.call("get", f"/deployments/{second['id']}/events")["items"]
    assert any(e["kind"] == "analysis" and "pass" in e["message"] for e in events)


def test_a_release_with_too_little_traffic_to_judge_pauses_for_a_person(stack):
    api, endpoint = setup(stack, {"sample": {"latency_ms": 5}})
    with Traffic(endpoint, rate=3, threads=1):
        second = deploy(api, canary(*STEPS))
        wait_state(stack, api, second["id"], "paused")
        paused = api.call("get", f"/deployments/{second['id']}")
        assert paused["weights"] == {"stable": 90, "canary": 10}  # nothing rolled back
        [run] = paused["analysis"]
        assert (run["phase"], run["decision"]) == ("inconclusive", "inconclusive")
        message = paused["message"]
        assert "analysis inconclusive (step 2): errors: Not enough data yet: canary " in message
        assert "of the 20 requests needed per side" in message
        assert "Promote to continue past it" in message
        api.call("post", f"/deployments/{second['id']}/promote")
        done = wait_done(stack, api, second["id"], timeout=30)
    assert done["state"] == "succeeded", done
