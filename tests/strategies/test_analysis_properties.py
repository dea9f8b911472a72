"""Property tests: canary ladders with analysis steps and background analysis against a simulated
fleet whose analyses pass, fail or are inconclusive after random times, with random promote
clicks: each run is asked for once; a step's analysis is passed only on a pass or a promote; a
failure happens exactly when a watched analysis failed; inconclusive waits for a person; and a
paused deployment still fails when a watched analysis does."""

from __future__ import annotations

import random

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from strategies.engine import decide
from strategies.spec import normalise
from strategies.tick import key_words

from .fleet import Fleet, run

LIMIT = 2_000
VERDICTS = ["pass", "pass", "fail", "inconclusive"]

step = st.one_of(
    st.integers(0, 100).map(lambda w: {"set_weight": w}),
    st.sampled_from([0, 1, 5]).map(lambda s: {"pause": {"duration": s}}),
    st.just({"pause": {}}),
    st.just({"analysis": {"template": "error-rate"}}),
    st.just({"analysis": {"template": "latency", "args": {"p": "99"}}}),
)


@st.composite
def specs(draw) -> dict:
    steps = draw(st.lists(step, min_size=1, max_size=7))
    raw = {
        "kind": "canary",
        "steps": steps,
        "stable_replicas": draw(st.integers(1, 4)),
        "progress_deadline": "1h",
        "health": {"interval": "100ms"},
    }
    if draw(st.booleans()):
        raw["analysis"] = {
            "template": "background-errors",
            "start_at_step": draw(st.integers(0, len(steps) - 1)),
        }
    return normalise(raw)


def outcomes(rng: random.Random, verdicts: list[str] = VERDICTS, most: int = 5):
    def outcome(key: str, request: dict) -> tuple[int, str]:
        return rng.randint(0, most), rng.choice(verdicts)

    return outcome


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=specs(), seed=st.integers(0, 2**32), promote_rate=st.sampled_from([0.05, 0.3]))
def test_analysis_gates_the_ladder(spec, seed, promote_rate):
    rng = random.Random(seed)
    fleet = Fleet(stable=spec["stable_replicas"], analysis_outcome=outcomes(rng))
    steps = spec["steps"]
    count = len(steps)
    before = {"progress": {}}
    intents: dict[int, str | None] = {}

    def intent(tick: int) -> str | None:
        wish = "promote" if rng.random() < promote_rate else None
        intents[fleet.tick] = wish
        return wish

    def check(obs, decision) -> None:
        wish = intents.get(fleet.tick)
        was = before["progress"]
        start = was.get("index", 0)
        end = decision.progress.get("index", start)
        seen = {key: value["decision"] for key, value in obs.analysis.items()}
        watched = was.get("watching", [])
        failed = [key for key in watched if seen.get(key) == "fail"]
        # a failure exactly when a watched analysis failed, naming it
        if failed:
            assert decision.failure is not None
            named = f"({key_words(failed[0])})"  # the step as the page numbers it
            assert decision.failure.startswith("analysis ") and named in decision.failure
        if decision.failure is not None:
            assert decision.failure.startswith("analysis ")
            named = decision.failure.split("(")[1].split(")")[0]
            assert any(key_words(key) == named and v == "fail" for key, v in seen.items())
            assert (decision.route, decision.scale, decision.start_analysis) == (False, {}, None)
            return
        # every analysis step passed on the way: passed, or promoted past
        for k in range(start, min(end, count)):
            if "analysis" in steps[k]:
                promoted = (k == start and wish == "promote") or wish == "promote_full"
                assert seen.get(f"step-{k}") == "pass" or promoted, (k, seen, wish)
        # the current step's inconclusive analysis waits for a person
        if end < count and "analysis" in steps[end] and seen.get(f"step-{end}") == "inconclusive":
            assert decision.waiting_for_promotion
        # a running analysis is stopped only while it runs; a run is asked for only once
        for key in decision.stop_analysis or []:
            assert seen.get(key) == "running"
        for request in decision.start_analysis or []:
            assert request["key"] not in obs.analysis
        if decision.route and decision.weights is not None:
            assert sum(decision.weights.values()) == 100
        before["progress"] = decision.progress

    last, _, _ = run(fleet, spec, {}, mode="forward", limit=LIMIT, check=check, intent=intent)
    assert len(fleet.analysis_starts) == len(set(fleet.analysis_starts))
    if last.outcome == "done":
        event("promoted")
        assert fleet.weights == {"stable": 0, "canary": 100}
        # background analysis was let go: stopped at 100%, accepted or decided
        assert "background" not in last.progress.get("watching", [])
    else:
        event("failed")
        assert last.failure is not None
        assert any(a["decision"] == "fail" for a in fleet.analyses.values())


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    spec=specs().filter(lambda s: s["analysis"] or any("analysis" in x for x in s["steps"])),
    seed=st.integers(0, 2**32),
    forward_ticks=st.integers(1, 20),
    paused_ticks=st.integers(1, 15),
)
def test_a_paused_rollout_fails_exactly_when_a_watched_analysis_fails(
    spec, seed, forward_ticks, paused_ticks
):
    rng = random.Random(seed)
    fleet = Fleet(
        stable=spec["stable_replicas"], analysis_outcome=outcomes(rng, ["fail", "pass"], 12)
    )
    last, progress, _ = run(
        fleet,
        spec,
        {},
        mode="forward",
        limit=forward_ticks,
        must_stop=False,
        intent=lambda tick: "promote" if rng.random() < 0.2 else None,
    )
    if last.outcome is not None or last.failure is not None:
        return
    for _ in range(paused_ticks):
        fleet.advance(last.wait)
        obs = fleet.observe()
        last = decide(spec, progress, obs, mode="paused")
        watched = progress.get("watching", [])
        failed = [k for k in watched if obs.analysis.get(k, {}).get("decision") == "fail"]
        assert (last.failure is not None) == bool(failed)
        assert (last.route, last.scale, last.start_analysis) == (False, {}, None)
        if last.failure:
            event("failed while paused")
            return
        progress = last.progress
    event("still paused")
