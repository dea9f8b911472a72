"""``decide`` as the reconcile loop sees it: dispatch, paused mode, bad arguments."""

from __future__ import annotations

import json

import pytest

from strategies.engine import PLANNERS, Decision, decide
from strategies.spec import KINDS, normalise

from .fleet import at, role

ROLLING = normalise({"kind": "rolling", "replicas": 4, "progress_deadline": "60s"})
RECREATE = normalise({"kind": "recreate", "replicas": 2})


def test_every_registered_kind_has_a_planner():
    assert set(PLANNERS) == set(KINDS)


@pytest.mark.parametrize("spec", [ROLLING, RECREATE])
def test_paused_mode_holds_everything_and_looks_again_in_a_few_seconds(spec):
    first = decide(spec, {}, at(0, role(4), role(0, version=None)), mode="forward")
    obs = at(5, role(4), role(1, 1, 1, failed=1))
    decision = decide(spec, first.progress, obs, mode="paused", intent="promote_full")
    assert decision.scale == {} and decision.route is False and decision.weights is None
    assert decision.events == [] and decision.outcome is None and decision.failure is None
    assert decision.wait == 5
    assert decision.step_index == first.step_index
    assert decision.message == f"paused at {decision.step}"
    assert decision.progress == {**first.progress, "paused_at": 5}


def test_paused_on_the_first_tick_holds_too():
    decision = decide(ROLLING, {}, at(0, role(4), role(0, version=None)), mode="paused")
    assert (decision.scale, decision.route, decision.step_index) == ({}, False, 0)


def test_the_progress_deadline_does_not_run_while_paused():
    first = decide(ROLLING, {}, at(0, role(4), role(0, version=None)), mode="forward")
    stuck = at(50, role(4), role(1, 0))
    progress = decide(ROLLING, first.progress, stuck, mode="paused").progress
    for now in (500, 1_000):
        progress = decide(ROLLING, progress, at(now, role(4), role(1, 0)), mode="paused").progress
    resumed = decide(ROLLING, progress, at(1_005, role(4), role(1, 0)), mode="forward")
    assert resumed.failure is None
    assert "paused_at" not in resumed.progress
    # 50 s ran before the pause, so 10 s more after it reach the 60 s deadline
    later = decide(ROLLING, resumed.progress, at(1_015, role(4), role(1, 0)), mode="forward")
    assert later.failure is None
    late = decide(ROLLING, resumed.progress, at(1_016, role(4), role(1, 0)), mode="forward")
    assert late.failure is not None and late.failure.startswith("no progress for 60 s")


def test_progress_is_json_ready():
    decision = decide(ROLLING, {}, at(0, role(4), role(0, version=None)), mode="forward")
    assert json.loads(json.dumps(decision.progress)) == decision.progress
    assert isinstance(decision, Decision)


def test_a_missing_progress_counts_as_the_first_tick():
    obs = at(0, role(4), role(0, version=None))
    assert decide(ROLLING, None, obs, mode="forward") == decide(ROLLING, {}, obs, mode="forward")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mode": "backward"}, "unknown mode 'backward'"),
        ({"mode": "forward", "intent": "skip"}, "unknown intent 'skip'"),
    ],
)
def test_an_unknown_mode_or_intent_is_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        decide(ROLLING, {}, at(0, role(4), role(0)), **kwargs)


def test_a_kind_without_a_planner_is_refused():
    with pytest.raises(ValueError, match="no planner for strategy kind 'linear'"):
        decide({"kind": "linear", "replicas": 1}, {}, at(0, role(1), role(0)), mode="forward")
