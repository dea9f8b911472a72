"""The reconcile loop and a canary's experiment step against a real fleet agent, tick by tick in
this process (no worker): the experiment's slots are the target's own (``exp-<id>-<key>``),
routed their shares once available and removed when the step ends, on an abort, and when left by
an earlier deployment; a tick killed in the middle of starting them leaves nothing the next tick
(another worker's) starts twice or leaks; a paused experiment keeps its slots. A provider without
``experiment_slots`` refuses the spec."""

from __future__ import annotations

import pytest
from django.urls import reverse

from integrations.base import ReleaseRef
from releases import actions
from releases.errors import InvalidSpec
from releases.models import Deployment, DeploymentEvent, State
from releases.reconcile import tick
from tests import factories
from tests.releases.reconcile import test_reconcile_switch as switch
from tests.releases.reconcile.test_reconcile_lease import lapse
from tests.releases.reconcile.test_reconcile_switch import FAST_HEALTH, deploy, live
from tests.ticks import tick_until

agent, fleet = switch.agent, switch.fleet  # the real fleet agent fixtures

BOTH = [
    {"name": "baseline", "spec_ref": "stable", "weight": 10},
    {"name": "canary", "spec_ref": "canary", "weight": 10},
]


def spec(experiment: dict, *before) -> dict:
    return {
        "kind": "canary",
        "steps": [*before, {"experiment": experiment}, {"set_weight": 50}, {"pause": {}}],
        "stable_replicas": 2,
        "health": FAST_HEALTH,
    }


def experiment_slots(fleet) -> dict:
    return {n: s for n, s in fleet.status().slots.items() if n.startswith("exp-") and s.desired}


def said(d) -> list[str]:
    return list(
        DeploymentEvent.objects.filter(deployment=d, kind="experiment")
        .order_by("id")
        .values_list("message", flat=True)
    )


def test_its_slots_run_beside_the_two_get_their_shares_and_go_when_it_ends(
    target, fleet, admin, client
):
    live(target)
    d = deploy(target, "2.0.0", spec({"duration": "1s", "templates": BOTH}, {"set_weight": 20}))
    d = tick_until(d, lambda d: (d.weights or {}).get("experiment") == 20, what="its shares")
    running = experiment_slots(fleet)
    assert {n: (s.version, s.desired) for n, s in running.items()} == {
        f"exp-{d.pk}-1-baseline": ("1.0.0", 1),
        f"exp-{d.pk}-1-canary": ("2.0.0", 1),
    }
    assert fleet.status().routing.weights == {
        d.stable_slot: 60,
        d.canary_slot: 20,
        f"exp-{d.pk}-1-baseline": 10,
        f"exp-{d.pk}-1-canary": 10,
    }
    assert d.weights == {"stable": 60, "canary": 20, "experiment": 20}
    target.refresh_from_db()
    roles = {n: s["role"] for n, s in target.observed.items() if n.startswith("exp-")}
    assert roles == {
        f"exp-{d.pk}-1-baseline": "experiment baseline",
        f"exp-{d.pk}-1-canary": "experiment canary",
    }
    client.force_login(admin)  # the page's split and Instances card show them
    html = client.get(reverse("deployment", args=[d.pk])).content.decode()
    assert '<div class="seg seg-experiment" data-seg="experiment" style="width: 20%">' in html
    assert f'<b>exp-{d.pk}-1-baseline</b> <span class="muted">experiment baseline</span>' in html
    d = tick_until(d, lambda d: d.state == State.PAUSED, what="the pause after it")
    assert experiment_slots(fleet) == {}
    assert fleet.status().routing.weights == {d.stable_slot: 50, d.canary_slot: 50}
    assert said(d) == [
        "experiment started: its slots are starting",
        "experiment running: every slot is available",
        "experiment done: its slots are torn down",
    ]


def test_a_paused_experiment_keeps_its_slots_and_an_abort_removes_them(target, fleet):
    live(target)
    d = deploy(target, "2.0.0", spec({"templates": BOTH}))  # no duration: until promoted
    d = tick_until(d, lambda d: d.state == State.PAUSED, what="waiting for promotion")
    assert "the experiment runs until promoted" in d.message
    tick.tick(d.pk)  # a paused tick
    assert len(experiment_slots(fleet)) == 2
    actions.abort(factories.api_actor(), d.pk, reason="enough")
    d = tick_until(Deployment.objects.get(pk=d.pk), lambda d: d.state == State.ABORTED)
    assert experiment_slots(fleet) == {}
    assert fleet.status().routing.weights == {d.stable_slot: 100, d.canary_slot: 0}


class Killed(BaseException):
    """The worker died here (not an error the tick records: it just stops)."""


def test_a_tick_killed_while_starting_the_slots_is_resumed_without_repeating_or_leaking(
    target, fleet, monkeypatch
):
    live(target)
    d = deploy(target, "2.0.0", spec({"duration": "1s", "templates": BOTH}))
    real = tick.integration_for
    started: list[str] = []

    class DiesAfterTheFirstSlot:
        def __init__(self, inner):
            self.inner = inner

        def __getattr__(self, name):
            return getattr(self.inner, name)

        def ensure_slot(self, slot: str, release: ReleaseRef, replicas: int) -> None:
            self.inner.ensure_slot(slot, release, replicas)
            if slot.startswith("exp-"):
                started.append(slot)
                raise Killed  # after starting one experiment slot, before recording anything

    monkeypatch.setattr(tick, "integration_for", lambda row: DiesAfterTheFirstSlot(real(row)))
    with pytest.raises(Killed):
        tick_until(d, lambda d: False, what="the kill")
    assert started == [f"exp-{d.pk}-0-baseline"]
    assert "experiment" not in (Deployment.objects.get(pk=d.pk).progress or {})  # not recorded
    lapse(d)  # its claim runs out; another worker's ticks take over
    monkeypatch.setattr(tick, "integration_for", real)

    calls: list[tuple[str, str]] = []

    class Counting:
        def __init__(self, inner):
            self.inner = inner

        def __getattr__(self, name):
            method = getattr(self.inner, name)

            def call(*args, **kwargs):
                if name in ("ensure_slot", "remove_slot") and str(args[0]).startswith("exp-"):
                    calls.append((name, args[0]))
                return method(*args, **kwargs)

            return call

    monkeypatch.setattr(tick, "integration_for", lambda row: Counting(real(row)))
    d = tick_until(Deployment.objects.get(pk=d.pk), lambda d: d.state == State.PAUSED)
    # the slot the killed tick started is not started again; the other one is, once; both go
    assert calls == [
        ("ensure_slot", f"exp-{d.pk}-0-canary"),
        ("remove_slot", f"exp-{d.pk}-0-baseline"),
        ("remove_slot", f"exp-{d.pk}-0-canary"),
    ]
    assert said(d).count("experiment started: its slots are starting") == 1
    assert experiment_slots(fleet) == {}


def test_experiment_slots_left_by_an_earlier_deployment_are_removed(target, fleet):
    live(target)
    release = ReleaseRef("1.0.0", {"sample": {"latency_ms": 1}}, {"interval": 0.1})
    fleet.ensure_slot("exp-999-0-canary", release, 1)  # a deployment long gone left it
    d = deploy(target, "2.0.0", spec({"duration": "1s", "templates": BOTH}))
    tick_until(d, lambda d: d.state == State.PAUSED)
    assert experiment_slots(fleet) == {}


@pytest.mark.parametrize("provider", ["aws-ecs", "aws-lambda", "aws-route53", "kubernetes"])
def test_a_provider_without_experiment_slots_refuses_the_spec(provider):
    with pytest.raises(InvalidSpec) as caught:
        actions.validate_strategy(spec({"templates": BOTH}), provider=provider)
    assert "experiment_slots (extra slots for an experiment step" in caught.value.message
    assert "experiment_slots" in caught.value.details["missing_capabilities"]
    assert actions.validate_strategy(spec({"templates": BOTH}), provider="local")


def test_an_experiment_analysis_naming_no_stored_template_is_refused_at_its_path(target):
    analysis = {"name": "compare", "template": "no-such-template"}
    with pytest.raises(InvalidSpec) as caught:
        actions.validate_strategy(spec({"templates": BOTH, "analyses": [analysis]}))
    [error] = caught.value.details["errors"]
    assert error["path"] == "steps[0].experiment.analyses[0].template"
    assert "there is no analysis template 'no-such-template'" in error["message"]
