"""Flagger's webhooks run as analyses (the built-in templates strategies.flagger.HOOK_TEMPLATES,
through the webhook metric provider) against a loopback HTTP receiver (tests.notifications.fakes, a
real server on 127.0.0.1): the payload is Flagger's, failures count toward the threshold, a
rollback hook's 2xx fails at once, a pre-rollout gate passes at its first 2xx, a hook that does
not answer within its timeout is a failed check."""

from __future__ import annotations

import json
import time

import pytest

from releases.analysis import runs
from strategies import flagger
from tests import factories
from tests.notifications.fakes import Receiver

pytestmark = pytest.mark.django_db


class Hooks(Receiver):
    """The loopback receiver (tests.notifications.fakes) answering each path with its own
    status (``status_of``), 200 by default."""

    def __init__(self):
        self.status_of: dict[str, int] = {}
        super().__init__()

    def answer(self, request):
        return self.status_of.get(request["path"], 200), {}, {}

    def bodies(self, path: str) -> list[dict]:
        return [r["json"] for r in list(self.requests) if r["path"] == path]


@pytest.fixture
def hooks():
    box = Hooks()
    yield box
    box.stop()


def hook_args(box, *paths, timeout=2.0):
    given = [
        {
            "name": path.strip("/"),
            "url": box.url + path,
            "timeout": timeout,
            "metadata": {"cmd": "hey -z 1m http://podinfo-canary/"},
            "canary": "podinfo",
            "namespace": "test",
        }
        for path in paths
    ]
    return {"hooks": json.dumps(given), "phase": "Progressing"}


def run(deployment, template, args, *, failure_limit, timeout=4.0, key="background"):
    runs.start(
        deployment,
        template,
        args,
        key=key,
        overrides={"interval": 0.2, "failure_limit": failure_limit},
    )
    return runs.run_analysis(deployment, template, key=key, wait=True, timeout=timeout)


def test_rollout_hooks_get_flaggers_payload_every_interval(target, hooks):
    deployment = factories.make_deployment(target, "2.0")

    verdict = run(deployment, flagger.ROLLOUT_TEMPLATE, hook_args(hooks, "/load"), failure_limit=0)

    assert verdict.decision == "pass", verdict.reason
    bodies = hooks.bodies("/load")
    assert len(bodies) >= 2
    assert bodies[0] == {
        "name": "podinfo",
        "namespace": "test",
        "phase": "Progressing",
        "checksum": "2.0",
        "metadata": {"cmd": "hey -z 1m http://podinfo-canary/"},
    }


def test_failing_rollout_hooks_count_toward_the_threshold(target, hooks):
    hooks.status_of["/load"] = 500
    deployment = factories.make_deployment(target, "2.0")

    verdict = run(deployment, flagger.ROLLOUT_TEMPLATE, hook_args(hooks, "/load"), failure_limit=2)

    assert verdict.decision == "fail", verdict.reason
    assert len(hooks.bodies("/load")) == 3  # threshold 3: the third failed check rolls back


def test_a_hook_slower_than_its_timeout_is_a_failed_check(target, hooks):
    hooks.hang = 1.0
    deployment = factories.make_deployment(target, "2.0")

    args = hook_args(hooks, "/slow", timeout=0.2)
    verdict = run(deployment, flagger.ROLLOUT_TEMPLATE, args, failure_limit=0)

    assert verdict.decision == "fail", verdict.reason


def test_a_rollback_hooks_2xx_fails_the_analysis_at_once(target, hooks):
    hooks.status_of["/rollback"] = 404
    deployment = factories.make_deployment(target, "2.0")
    args = hook_args(hooks, "/rollback")
    quiet = run(deployment, flagger.ROLLBACK_TEMPLATE, args, failure_limit=0, timeout=1.0)
    assert quiet.decision == "pass", quiet.reason  # no rollback asked
    quiet_calls = hooks.bodies("/rollback")

    hooks.status_of["/rollback"] = 200
    loud = run(deployment, flagger.ROLLBACK_TEMPLATE, args, failure_limit=0, key="again")
    assert loud.decision == "fail" and len(hooks.bodies("/rollback")) == len(quiet_calls) + 1


def test_a_pre_rollout_gate_passes_at_its_first_2xx_after_failures(target, hooks):
    hooks.status_of["/smoke"] = 503
    deployment = factories.make_deployment(target, "2.0")
    args = hook_args(hooks, "/smoke")
    runs.start(
        deployment,
        flagger.PRE_ROLLOUT_TEMPLATE,
        args,
        key="step-0",
        overrides={"interval": 0.2, "failure_limit": 5},
    )
    while not hooks.bodies("/smoke"):  # measured at least once, and refused
        first = runs.run_analysis(deployment, flagger.PRE_ROLLOUT_TEMPLATE, key="step-0")
        assert first.decision == "running", first.reason
        time.sleep(0.05)
    hooks.status_of["/smoke"] = 200

    verdict = runs.run_analysis(
        deployment, flagger.PRE_ROLLOUT_TEMPLATE, key="step-0", wait=True, timeout=5
    )

    assert verdict.decision == "pass", verdict.reason
    assert verdict.metrics["pre-rollout-webhooks"]["failed"] >= 1
