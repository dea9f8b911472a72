"""End to end on the local fleet, with a real fleet agent and a real Celery worker: a Flagger
Canary (A/B testing by header, with the built-in request-success-rate and request-duration
metrics) pasted as it is into the API. Only requests carrying the header reach the new release;
when it fails half of them, Flagger's `threshold` of failed checks rolls it back by itself, the
reason naming the built-in metrics' template; a healthy one is promoted after the iterations."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from .test_bluegreen import setup_service
from .test_canary import first_release
from .test_rolling_deploy import wait_done

pytestmark = pytest.mark.e2e

INSIDER = {"x-canary": "insider"}


def canary(iterations: int) -> dict:
    return {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "Canary",
        "metadata": {"name": "shop", "namespace": "test"},
        "spec": {
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "shop"},
            "service": {"port": 9898},
            "progressDeadlineSeconds": 60,
            "analysis": {
                "interval": "2s",
                "threshold": 2,
                "iterations": iterations,
                "match": [{"headers": {"x-canary": {"exact": "insider"}}}],
                "metrics": [
                    {
                        "name": "request-success-rate",
                        "thresholdRange": {"min": 99},
                        "interval": "1m",
                    },
                    {"name": "request-duration", "thresholdRange": {"max": 500}, "interval": "30s"},
                ],
            },
        },
    }


class Insiders:
    """Requests with and without the A/B header, ~60/s each, in a thread; the versions seen."""

    def __init__(self, endpoint: str):
        self.endpoint, self.seen = endpoint, {"insider": set(), "other": set()}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        with httpx.Client(timeout=5) as client:
            while not self._stop.is_set():
                for who, headers in (("insider", INSIDER), ("other", {})):
                    try:
                        answer = client.get(self.endpoint, headers=headers)
                    except httpx.HTTPError:
                        continue
                    self.seen[who].add(answer.headers.get("x-switchyard-version"))
                time.sleep(0.015)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(5)


def setup(stack, artifact):
    api = setup_service(versions=("1.0.0",))
    body = {"version": "2.0.0", "artifact": artifact, "commit": "def"}
    api.call("post", "/services/shop/releases", body)
    return api, first_release(stack, api)


def deploy(api, spec) -> dict:
    body = {"service": "shop", "environment": "dev", "version": "2.0.0", "strategy": spec}
    return api.call("post", "/deployments", body)


def test_a_flagger_ab_canary_that_fails_its_insiders_is_rolled_back_by_its_threshold(stack):
    api, endpoint = setup(stack, {"sample": {"latency_ms": 5, "error_rate": 0.5}})
    with Insiders(endpoint) as traffic:
        second = deploy(api, canary(iterations=30))  # 60 s: the metrics decide long before
        assert second["strategy"]["analysis"]["failure_limit"] == 1
        done = wait_done(stack, api, second["id"], timeout=60)

    assert done["state"] == "failed", done
    assert "'request-metrics'" in done["failure_reason"]
    assert "request-success-rate" in done["failure_reason"]
    assert done["weights"] == {"stable": 100, "canary": 0}
    assert traffic.seen["other"] == {"1.0.0"}  # only the header's requests reached 2.0.0
    assert "2.0.0" in traffic.seen["insider"]
    [run] = done["analysis"]
    assert run["decision"] == "fail"
    failed = [m for m in run["metrics"] if m["verdict"] == "failed"]
    assert [m["name"] for m in failed] == ["request-success-rate"]


def test_a_healthy_flagger_ab_canary_is_promoted_after_its_iterations(stack):
    api, endpoint = setup(stack, {"sample": {"latency_ms": 5}})
    started = time.monotonic()
    with Insiders(endpoint) as traffic:
        second = deploy(api, canary(iterations=3))  # 6 s of A/B testing
        done = wait_done(stack, api, second["id"], timeout=60)

    assert done["state"] == "succeeded", done
    assert time.monotonic() - started >= 6.0
    assert traffic.seen["other"] >= {"1.0.0"}
    assert "2.0.0" in traffic.seen["insider"]
    target = api.call("get", "/services/shop/targets/dev")
    assert not (target.get("routing") or {}).get("header_routes")  # removed at the promotion


ERROR_RATIO = {  # a Flagger MetricTemplate over the local routers' metrics, as Prometheus has them
    "apiVersion": "flagger.app/v1beta1",
    "kind": "MetricTemplate",
    "metadata": {"name": "error-ratio"},
    "spec": {
        "provider": {"type": "prometheus"},  # its address is set below
        "query": (
            'sum(rate(switchyard_router_requests_total{target="{{ target }}", '
            'version="{{ version }}", code_class=~"5xx|error"}[{{ interval }}])) / '
            'sum(rate(switchyard_router_requests_total{target="{{ target }}", '
            'version="{{ version }}"}[{{ interval }}]))'
        ),
    },
}


def test_a_flagger_canary_with_a_metric_template_and_a_load_test_webhook(stack):
    """A Flagger Canary whose custom metric (a MetricTemplate posted as it is, read from a real
    Prometheus scraping the fleet agent) sees the new release fail half its requests: its
    threshold rolls it back. Its load-test webhook (a loopback receiver standing in for
    flagger-loadtester) was POSTed Flagger's payload at every interval meanwhile."""
    from tests.notifications.fakes import Receiver
    from tests.prometheus import run_prometheus

    api, endpoint = setup(stack, {"sample": {"latency_ms": 5, "error_rate": 0.5}})
    receiver = Receiver()
    with run_prometheus(f"127.0.0.1:{stack.agent.port}", token=stack.agent.token) as prometheus:
        template = {
            **ERROR_RATIO,
            "spec": {**ERROR_RATIO["spec"], "provider": {"address": prometheus}},
        }
        api.call("post", "/analysis-templates", template)
        spec = canary(iterations=1)
        spec["spec"]["analysis"] = {
            "interval": "2s",
            "threshold": 2,
            "stepWeight": 5,
            "maxWeight": 50,  # 10 steps of 2 s: the metric decides long before
            "metrics": [
                {
                    "name": "errors",
                    "templateRef": {"name": "error-ratio"},
                    "thresholdRange": {"max": 0.1},
                    "interval": "5s",
                }
            ],
            "webhooks": [
                {
                    "name": "load-test",
                    "url": f"{receiver.url}/",
                    "timeout": "5s",
                    "metadata": {"cmd": f"hey -z 1m -q 10 -c 2 {endpoint}"},
                }
            ],
        }
        try:
            with Insiders(endpoint):
                second = deploy(api, spec)
                assert second["strategy"]["analysis"]["templates"] == [
                    "error-ratio",
                    "flagger-rollout-hooks",
                ]
                done = wait_done(stack, api, second["id"], timeout=90)
        finally:
            receiver.stop()

    assert done["state"] == "failed", done.get("analysis")
    assert "'error-ratio'" in done["failure_reason"], done["failure_reason"]
    assert done["weights"] == {"stable": 100, "canary": 0}
    calls = [r["json"] for r in receiver.requests]
    assert calls, "the load-test webhook was never called"
    assert calls[0] == {
        "name": "shop",
        "namespace": "test",
        "phase": "Progressing",
        "checksum": "2.0.0",
        "metadata": {"cmd": f"hey -z 1m -q 10 -c 2 {endpoint}"},
    }
