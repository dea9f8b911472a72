"""Property tests: the canary planner against a simulated fleet, for random ladders, random
instance start-up delays, random promote clicks and an abort at a random point."""

from __future__ import annotations

import random

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from strategies.engine import RoutePlan, decide, routing_before_observing
from strategies.spec import describe_steps, normalise

from .fleet import Fleet, run

STABLE_ONLY = {"stable": 100, "canary": 0}
CANARY_ONLY = {"stable": 0, "canary": 100}
LIMIT = 2_000

step = st.one_of(
    st.integers(0, 100).map(lambda w: {"set_weight": w}),
    st.sampled_from([0, 1, 5, 30]).map(lambda s: {"pause": {"duration": s}}),
    st.just({"pause": {}}),
    st.integers(0, 6).map(lambda n: {"set_canary_scale": {"replicas": n}}),
    st.integers(0, 100).map(lambda w: {"set_canary_scale": {"weight": w}}),
    st.just({"set_canary_scale": {"match_traffic_weight": True}}),
)


@st.composite
def canary_specs(draw) -> dict:
    return normalise(
        {
            "kind": "canary",
            "steps": draw(st.lists(step, min_size=1, max_size=8)),
            "stable_replicas": draw(st.integers(1, 8)),
            "canary_replicas": draw(st.one_of(st.just("match_weight"), st.integers(1, 5))),
            "route": draw(st.sampled_from([{}, {"header": "X-Canary"}, {"cookie": "c"}])),
            "progress_deadline": "1h",
            "health": {"interval": draw(st.sampled_from(["100ms", "1s"]))},
        }
    )


def _promoted(progress: dict) -> bool:
    return bool(progress.get("released_stable"))


def _checks(spec: dict, fleet: Fleet):
    stable_replicas = spec["stable_replicas"]
    steps = describe_steps(spec)
    seen = {"promoted": False}

    def check(obs, decision) -> None:
        assert decision.failure is None
        assert decision.step == steps[decision.step_index]
        if decision.route:
            weights = decision.weights
            assert weights is not None and set(weights) == {"stable", "canary"}
            assert all(0 <= w <= 100 for w in weights.values())
            assert weights["stable"] + weights["canary"] == 100
            assert not decision.preview
        stable = decision.scale.get("stable", obs.stable.desired)
        if stable < stable_replicas:
            # the old release shrinks only once 100% of requests are on the new one
            assert fleet.weights == CANARY_ONLY and stable == 0
            seen["promoted"] = True
        if not seen["promoted"]:
            assert fleet.role("stable").ready == stable_replicas
        for role in ("stable", "canary"):
            assert decision.scale.get(role, 0) >= 0

    return check


def _promote_now_and_then(rng: random.Random, rate: float):
    def intent(tick: int) -> str | None:
        return "promote" if rng.random() < rate else None

    return intent


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    spec=canary_specs(),
    seed=st.integers(0, 2**32),
    max_delay=st.integers(0, 3),
    promote_rate=st.sampled_from([0.05, 0.3, 1.0]),
)
def test_the_ladder_keeps_weights_valid_and_the_old_release_whole_until_promoted(
    spec, seed, max_delay, promote_rate
):
    rng = random.Random(seed)
    fleet = Fleet(stable=spec["stable_replicas"], delay=lambda: rng.randint(0, max_delay))
    last, _, _ = run(
        fleet,
        spec,
        {},
        mode="forward",
        limit=LIMIT,
        check=_checks(spec, fleet),
        intent=_promote_now_and_then(rng, promote_rate),
    )
    assert last.outcome == "done"
    assert fleet.weights == CANARY_ONLY and fleet.rules is None
    assert fleet.role("canary").ready == spec["stable_replicas"]
    assert fleet.role("stable").desired == 0


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    spec=canary_specs(),
    seed=st.integers(0, 2**32),
    max_delay=st.integers(0, 3),
    abort_after=st.integers(1, 40),
    full=st.booleans(),
)
def test_an_abort_at_any_point_puts_every_request_on_the_old_release_at_once(
    spec, seed, max_delay, abort_after, full
):
    rng = random.Random(seed)
    fleet = Fleet(stable=spec["stable_replicas"], delay=lambda: rng.randint(0, max_delay))
    _, progress, _ = run(
        fleet,
        spec,
        {},
        mode="forward",
        limit=abort_after,
        must_stop=False,
        intent=_promote_now_and_then(rng, 0.3 if not full else 0.0),
        stop=lambda d: d.outcome is not None,
    )
    fleet.advance(rng.choice([0.0, 0.5, 3.0]))
    obs = fleet.observe()
    first = decide(spec, progress, obs, mode="rollback")
    event("aborted before the promotion" if not _promoted(progress) else "aborted after it")
    if not _promoted(progress):
        # the old release is whole: one routing change, weight 0, no header rules, restored
        assert routing_before_observing(spec, progress, mode="rollback") == RoutePlan(STABLE_ONLY)
        assert first.route_plan == RoutePlan(STABLE_ONLY)
        assert first.outcome == "restored" and first.scale == {}
        assert first.cleanup_after == (30 if obs.canary.desired else None)
        return
    # promoted (the old release was let go): it comes back first, then takes the traffic
    assert routing_before_observing(spec, progress, mode="rollback") is None

    def check(obs, decision):
        if decision.route and decision.weights == STABLE_ONLY:
            assert obs.stable.ready == spec["stable_replicas"]
        if decision.route and decision.weights is not None:
            assert sum(decision.weights.values()) == 100

    last, _, _ = run(fleet, spec, progress, mode="rollback", limit=LIMIT, check=check)
    assert last.outcome == "restored"
    assert fleet.weights == STABLE_ONLY and fleet.rules is None
    assert fleet.role("stable").ready == spec["stable_replicas"]
