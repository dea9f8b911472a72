"""Blue-green planner: the new release starts on the idle side as a preview, passes its smoke
checks, is promoted (after ``auto_promote`` or by a person), grows to full size, and takes 100%
of new requests in one routing change; the old side stays up for ``scale_down_delay`` so that a
rollback is a switch back, then is scaled down.

Phases (= step indexes of ``describe_steps``): 0 preview (``preview_replicas`` instances, exposed
on the target's preview endpoint, no user traffic), 1 smoke checks (``Decision.run_smoke``: the
caller runs them against the preview and hands the result back as ``Observation.checks``; a
failure fails the rollout, which then rolls back), then the ``pre_promotion_analysis`` if any (key
``pre-promotion``: pass opens the gate, fail fails the rollout before anything was switched,
inconclusive waits for a person), 2 promotion gate (``auto_promote`` seconds after
the checks passed, or ``waiting_for_promotion`` until a person promotes), 3 scale the new release
to ``replicas``, 4 the switch (100% to the new release, preview off, in one routing change),
5 the scale-down delay -- and the ``post_promotion_analysis`` if any (key ``post-promotion``, from
the switch: fail switches back; inconclusive waits for a person; the old release is kept until it
passed) -- then the old release is scaled to 0 and the rollout is done.

On a first deployment (nothing on the old side) the steps are the same, but a router with nothing
else to serve may send user traffic to the preview before the switch.

Intent (forward mode): "promote" or "promote_full" before the switch opens the promotion gate (a
click before the smoke checks passed is remembered; the checks and the pre-promotion analysis
still have to pass); given while an analysis is inconclusive, it continues past it. The progress
deadline runs only while waiting for instances. Rollback is a switch back
(``strategies.switchback``); after the scale-down, rolling back is a new deployment.

``keep_previous`` (the caller's rollback window, docs/loop.md): after the scale-down delay the
rollout is done without scaling the old side down; the caller keeps it warm at 0% traffic.
Progress keys owned here: ``phase``, ``gate_at``, ``promoted``, ``switched_at``,
``released_stable``, ``smoke_passed``, ``post_analysed``.
"""

from __future__ import annotations

from typing import Any

from strategies import spec_analysis
from strategies.durations import format_duration
from strategies.state import Decision, Observation
from strategies.switchback import CANARY_ONLY, STABLE_ONLY, switch_back
from strategies.tick import (
    ANALYSIS_WAIT,
    PAUSED_WAIT,
    Tick,
    analysis_failed,
    analysis_inconclusive,
    instances,
)

PREVIEW, SMOKE, GATE, SCALE, SWITCH, DELAY = range(6)
MAX_WAIT = 10.0  # look again at least this often while waiting on a timer
KEPT = "the old release stays warm at 0% traffic (the rollback window)"
PRE, POST = "pre-promotion", "post-promotion"


def decide_forward(
    spec: dict[str, Any],
    progress: dict[str, Any],
    obs: Observation,
    *,
    intent: str | None,
    keep_previous: bool = False,
) -> Decision:
    tick = Tick(spec, progress, obs)
    tick.begin_forward()
    replicas, preview = spec["replicas"], spec["preview_replicas"]
    stable, canary, now = obs.stable, obs.canary, obs.now
    state = tick.progress
    if "phase" not in state:
        state["phase"] = PREVIEW
        _entered(tick, PREVIEW)
    phase = state["phase"]
    failure = tick.analysis_failure()
    if failure is not None:
        return tick.give_up(failure, step_index=phase)
    if intent is not None and phase <= GATE and not state.get("promoted"):
        state["promoted"] = True
        tick.event("promote", "promoted: the switch follows once the preview passed its checks")
    if state.get("had_stable") and not state.get("released_stable"):
        tick.ensure("stable", max(replicas, stable.desired))

    wait, message = tick.busy_wait(), ""
    if phase == PREVIEW:
        tick.ensure("canary", min(replicas, max(preview, canary.desired)))
        tick.route_to(STABLE_ONLY, preview=True)
        if canary.available >= preview:
            phase = _enter(tick, SMOKE)
        else:
            message = f"preview: {canary.available}/{preview} instances of the new release ready"
    if phase == SMOKE:
        result = obs.checks.get("smoke")
        smoked = not spec["smoke"] or state.get("smoke_passed", False)
        if smoked:
            pass
        elif result is None:
            tick.run_smoke = spec["smoke"]
            wait, message = 0.0, "running smoke checks on the preview"
        elif not result.get("passed"):
            return tick.give_up(
                f"smoke checks failed on the preview: {_why(result)}", step_index=SMOKE
            )
        else:
            tick.event("smoke", "smoke checks passed on the preview", results=result.get("results"))
            state["smoke_passed"] = smoked = True
        pre = spec.get("pre_promotion_analysis")
        if smoked and pre is None:
            phase = _enter(tick, GATE)
        elif smoked:
            verdict, reason = tick.analysis(PRE, pre, step_index=SMOKE)
            tick.hold_clock()
            if verdict == "fail":
                return tick.give_up(
                    analysis_failed(PRE, {**pre, "reason": reason}), step_index=SMOKE
                )
            if verdict == "pass" or (verdict == "inconclusive" and intent is not None):
                if verdict != "pass":
                    tick.event("promote", "promoted past the inconclusive pre-promotion analysis")
                tick.unwatch(PRE)
                phase = _enter(tick, GATE)
            elif verdict == "inconclusive":
                tick.waiting_for_promotion = True
                wait, message = PAUSED_WAIT, analysis_inconclusive(PRE, reason)
            else:
                wait = ANALYSIS_WAIT
                message = f"pre-promotion {spec_analysis.words(pre)} of the preview: {reason}"
    if phase == GATE:
        tick.hold_clock()
        state.setdefault("gate_at", now)
        auto = spec["auto_promote"]
        if state.get("promoted"):
            phase = _enter(tick, SCALE)
        elif auto is not None and now - state["gate_at"] >= auto:
            tick.event("promote", f"promoted automatically after {format_duration(auto)}")
            phase = _enter(tick, SCALE)
        elif auto is None:
            tick.waiting_for_promotion = True
            wait, message = PAUSED_WAIT, "waiting for promotion (the preview passed its checks)"
        else:
            left = auto - (now - state["gate_at"])
            wait = min(left, MAX_WAIT)
            message = f"promoting automatically in {format_duration(round(left, 3))}"
    if phase == SCALE:
        tick.ensure("canary", max(replicas, canary.desired))
        if canary.available >= replicas:
            phase = SWITCH
        else:
            message = f"{canary.available}/{replicas} instances of the new release ready"
    if phase == SWITCH:
        tick.route_to(CANARY_ONLY)
        state["switched_at"] = now
        tick.event("switch", "switched: 100% of new requests go to the new release")
        phase = _enter(tick, DELAY)
    if phase == DELAY:
        tick.hold_clock()
        left = spec["scale_down_delay"] - (now - state["switched_at"])
        post = spec.get("post_promotion_analysis")
        analysing = ""  # what the post-promotion analysis waits for, if it keeps the old side
        if post is not None and not state.get("post_analysed"):
            verdict, reason = tick.analysis(POST, post, step_index=DELAY)
            if verdict == "fail":
                return tick.give_up(
                    analysis_failed(POST, {**post, "reason": reason}), step_index=DELAY
                )
            if verdict == "pass" or (verdict == "inconclusive" and intent is not None):
                if verdict != "pass":
                    tick.event("promote", "promoted past the inconclusive post-promotion analysis")
                tick.unwatch(POST)
                state["post_analysed"] = True
            elif verdict == "inconclusive":
                tick.waiting_for_promotion = True
                analysing = analysis_inconclusive(POST, reason)
            else:
                analysing = f"post-promotion {spec_analysis.words(post)}: {reason}"
        if tick.waiting_for_promotion:
            wait, message = PAUSED_WAIT, analysing
        elif left > 0 or analysing:
            wait = min(left, MAX_WAIT) if left > 0 else ANALYSIS_WAIT
            if analysing:
                wait = min(wait, ANALYSIS_WAIT)
            kept = f"{format_duration(round(left, 3))} more" if left > 0 else "until it passes"
            message = f"switched; the old release stays up {kept} (a rollback now is a switch back)"
            if analysing:
                message += f"; {analysing}"
        elif keep_previous and state.get("had_stable"):
            # the rollback window: the old side stays up at 0% traffic, the caller retires it
            tick.event("done", f"rollout done: {instances(replicas)} on the new release; {KEPT}")
            state["phase"] = phase
            return tick.finish(step_index=DELAY, message="rollout done", wait=0.0, outcome="done")
        else:
            tick.ensure("stable", 0)
            if not state.get("released_stable"):
                state["released_stable"] = True
                tick.event("scale", "scaling the old release down", role="stable", replicas=0)
            if stable.desired == 0:
                tick.event("done", f"rollout done: {instances(replicas)} on the new release")
                state["phase"] = phase
                return tick.finish(
                    step_index=DELAY, message="rollout done", wait=0.0, outcome="done"
                )
            wait, message = 0.0, "scaling the old release down"
    state["phase"] = phase

    if phase in (PREVIEW, SCALE):
        tick.note_progress([phase, canary.available])
        if tick.overdue():
            needed = preview if phase == PREVIEW else replicas
            seen = f"{canary.ready}/{needed} instances of the new release ready"
            if canary.failed:
                seen += f", {instances(canary.failed)} failing health checks"
            return tick.fail(seen, step_index=phase)
    return tick.finish(step_index=phase, message=message, wait=wait)


def decide_rollback(spec: dict[str, Any], progress: dict[str, Any], obs: Observation) -> Decision:
    """A switch back: 100% to the old release at once (it is kept up until the scale-down)."""
    return switch_back(spec, progress, obs)


def _enter(tick: Tick, phase: int) -> int:
    _entered(tick, phase)
    return phase


def _entered(tick: Tick, phase: int) -> None:
    step = tick.steps[phase]
    tick.event("step", f"step {phase + 1} of {len(tick.steps)} started: {step}", step_index=phase)


def _why(result: dict[str, Any]) -> str:
    failed = [r.get("message", "") for r in result.get("results", ()) if not r.get("ok")]
    return "; ".join(m for m in failed if m) or result.get("message") or "no detail"
