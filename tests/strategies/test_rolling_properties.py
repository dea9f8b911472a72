"""Property tests: the rolling planner against a simulated fleet, for random valid specs."""

from __future__ import annotations

import random

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from strategies.spec import SpecError, describe_steps, normalise, rolling_sizes

from .fleet import Fleet, run

LIMIT = 3_000


def _count_or_percent(low: int, high: int) -> st.SearchStrategy:
    return st.one_of(st.integers(low, high), st.integers(0, 100).map(lambda p: f"{p}%"))


@st.composite
def rolling_specs(draw) -> dict:
    raw = {
        "kind": "rolling",
        "replicas": draw(st.integers(1, 12)),
        "batch_size": draw(_count_or_percent(1, 14)),
        "max_surge": draw(_count_or_percent(0, 3)),
        "max_unavailable": draw(_count_or_percent(0, 3)),
        "min_ready": draw(st.sampled_from([0, 0.5, 1, 2.5])),
        "health": {"interval": draw(st.sampled_from(["100ms", "500ms", "1s", "3s"]))},
    }
    try:
        return normalise(raw)
    except SpecError:
        assume(False)
        raise


def _fleet(spec: dict, seed: int, max_delay: int, *, first: bool) -> Fleet:
    rng = random.Random(seed)
    return Fleet(
        stable=0 if first else spec["replicas"],
        min_ready=spec["min_ready"],
        delay=lambda: rng.randint(0, max_delay),
    )


def _checks(spec: dict, fleet: Fleet, *, first: bool):
    replicas, surge, unavailable, batch = rolling_sizes(spec)
    steps = describe_steps(spec)

    def check(obs, decision) -> None:
        assert decision.failure is None
        assert 0 <= decision.step_index < len(steps)
        assert decision.step == steps[decision.step_index]
        canary = decision.scale.get("canary", obs.canary.desired)
        stable = decision.scale.get("stable", obs.stable.desired)
        assert canary >= obs.canary.desired, "the new release was scaled down"
        assert stable <= obs.stable.desired, "the old release was scaled up"
        # whichever order the caller applies the two scales in, surge is respected
        assert canary + obs.stable.desired <= replicas + surge
        # batch gates: neither side moves past the current batch's goal
        goal = min(replicas, (decision.step_index + 1) * batch)
        assert canary <= max(obs.canary.desired, goal)
        assert stable >= min(obs.stable.desired, replicas - goal)
        assert fleet.total("desired") <= replicas + surge
        if not first:
            assert fleet.total("ready") >= replicas - unavailable
            assert fleet.total("available") >= replicas - unavailable  # min_ready counts too
        if decision.route and decision.weights is not None:
            assert sum(decision.weights.values()) == 100

    return check


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(
    spec=rolling_specs(),
    seed=st.integers(0, 2**32),
    max_delay=st.integers(0, 4),
    first=st.booleans(),
)
def test_rolling_respects_surge_and_availability_and_finishes(spec, seed, max_delay, first):
    fleet = _fleet(spec, seed, max_delay, first=first)
    check = _checks(spec, fleet, first=first)
    decision, _, _ = run(fleet, spec, {}, mode="forward", limit=LIMIT, check=check)
    replicas = spec["replicas"]
    assert decision.outcome == "done"
    assert fleet.role("canary").available == replicas == fleet.role("canary").desired
    assert fleet.role("stable").desired == 0
    assert fleet.weights == {"stable": 0, "canary": 100}
    assert decision.step_index == len(describe_steps(spec)) - 1


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(
    spec=rolling_specs(),
    seed=st.integers(0, 2**32),
    max_delay=st.integers(0, 4),
    forward_ticks=st.integers(1, 60),
    first=st.booleans(),
)
def test_rollback_from_any_point_restores_the_old_release(
    spec, seed, max_delay, forward_ticks, first
):
    fleet = _fleet(spec, seed, max_delay, first=first)
    replicas = spec["replicas"]
    _, progress, _ = run(fleet, spec, {}, mode="forward", limit=forward_ticks, must_stop=False)

    def check(obs, decision) -> None:
        assert decision.failure is None
        if "canary" in decision.scale and not first:
            assert obs.stable.ready >= replicas, "new release stopped before the old was back"
        if not first and obs.stable.ready >= 1:
            assert fleet.weights == {"stable": 100, "canary": 0}

    decision, _, _ = run(fleet, spec, progress, mode="rollback", limit=LIMIT, check=check)
    assert decision.outcome == "restored"
    assert fleet.role("canary").desired == 0
    if first:
        assert fleet.role("stable").desired == 0
    else:
        assert fleet.role("stable").desired == replicas == fleet.role("stable").ready
        assert fleet.weights == {"stable": 100, "canary": 0}
