"""Canary planner: walks the spec's steps, then promotes.

``set_weight W`` scales the new release to its size for W (``spec_canary.canary_size``), waits
until that many instances are available, then routes W% of new requests to it and 100-W% to the
old release, with the spec's header/cookie/sticky rules. ``pause`` waits its duration, or until a
person promotes (``Decision.waiting_for_promotion``). ``set_canary_scale`` resizes the new
release independently of the weight and waits for a scale-up to be available. ``analysis``
(key ``step-<index>``) asks the caller to start the run on entering the step and holds until its
verdict: pass -> next step; fail -> the rollout fails (the caller rolls back at once);
inconclusive -> ``waiting_for_promotion`` (a person decides). Steps that are already satisfied
complete within one tick.

``experiment`` (``strategies.spec_experiment``) starts its slots (``Decision.experiment``: the
whole set wanted, re-declared every tick it runs, so a tick that does not is a tear-down), waits
until they are all available (the progress deadline applies), routes their shares of requests
(taken from the old release's), starts its analyses (keys ``experiment-<index>-<name>``, each
with the ``arms`` it compares: the experiment's baseline and canary slots), then ends when its
``duration`` has passed and its required analyses passed -- or waits for a person when it has
neither. It tears its slots down and stops its analyses when it ends or is promoted past; a
failed analysis fails the rollout (and the rollback tears the slots down). On a first deployment
(no old release) an experiment with a baseline is skipped, as Argo skips steps then.

Background analysis (the spec's ``analysis``, key ``background``) starts when step
``start_at_step`` begins and is watched until the tick that routes 100% to the new release, which
stops it: a failure at any time fails the rollout; an inconclusive verdict holds everything and
waits for a person (a promote accepts it and changes nothing else).

The old release stays fully scaled (``stable_replicas``) until the promotion completes, so an
abort never needs to scale anything up: promotion scales the new release to ``stable_replicas``,
routes 100% to it (rules off), and only then scales the old release to 0; done once it is.

Intent (forward mode only): "promote" accepts an inconclusive background analysis if one holds the
rollout, else finishes the current pause or analysis step (a running analysis is stopped); given at
any other step it is ignored, with an event, so a late click never skips a pause further on;
"promote_full" skips every remaining step and promotes. Rollback is a switch back
(``strategies.switchback``).

Progress keys owned here: ``index`` (the step being carried out; ``len(steps)`` = promotion),
``weight`` (last routed by a step), ``scale`` (the ``set_canary_scale`` in force),
``pause_started_at``, ``released_stable``, ``experiment`` (the experiment in progress:
``{"index", "slots": {key: {"release", "replicas"}}, "ready_at"}``) and ``background`` ("on"
while the background analysis is watched, "off" after).
"""

from __future__ import annotations

import math
from typing import Any

from strategies import spec_analysis, spec_experiment
from strategies.durations import format_duration
from strategies.spec_canary import background_of, canary_size
from strategies.state import Decision, Observation
from strategies.switchback import CANARY_ONLY, switch_back
from strategies.tick import (
    ANALYSIS_WAIT,
    PAUSED_WAIT,
    Tick,
    analysis_failed,
    analysis_inconclusive,
    instances,
)

MAX_WAIT = 10.0  # look again at least this often during a long pause
BACKGROUND = "background"


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
    steps, stable_replicas = spec["steps"], spec["stable_replicas"]
    count = len(steps)
    stable, canary = obs.stable, obs.canary
    state = tick.progress
    rules = _with_routes(rules_of(spec), state.get("routes"))
    if "index" not in state:
        state.update(index=0, weight=0, scale=None)
        _started(tick, 0)
        tick.route_to(_split(0), rules=rules)
    tick.keep_experiment()  # an experiment in progress keeps its slots unless it ends this tick
    index, weight, scale = state["index"], state["weight"], state["scale"]
    failure = tick.analysis_failure()
    if failure is not None:
        return tick.give_up(failure, step_index=min(index, count))
    background = background_of(spec)
    held = ""  # why an inconclusive background analysis holds everything
    if state.get("background") == "on":
        verdict, reason = tick.analysis(BACKGROUND, background, step_index=None)
        if verdict == "inconclusive":
            if intent is not None:
                tick.unwatch(BACKGROUND)
                state["background"] = "off"
                tick.event("promote", "promoted: the inconclusive background analysis accepted")
                intent = None if intent == "promote" else intent
            else:
                held = analysis_inconclusive(BACKGROUND, reason)
        elif verdict == "pass":  # a background template with a count: it has said all it will
            tick.unwatch(BACKGROUND)
            state["background"] = "off"

    if intent == "promote_full" and index < count:
        _skip_analysis(tick, index)
        _end_experiment(tick, weight, rules)
        index = count
        state.pop("pause_started_at", None)
        tick.event("promote", "promoted in full: skipping the remaining steps", step_index=index)
        _started(tick, index)
    elif intent == "promote":
        if index < count and any(k in steps[index] for k in ("pause", "analysis", "experiment")):
            _skip_analysis(tick, index)
            _end_experiment(tick, weight, rules)
            state.pop("pause_started_at", None)
            tick.event("promote", f"promoted: {tick.steps[index]} finished", step_index=index)
            index += 1
            _started(tick, index)
        else:
            where = tick.steps[min(index, count)]
            tick.event(
                "promote",
                f"promote ignored: the current step ({where}) is not a pause, an analysis or an "
                "experiment",
            )

    if state.get("had_stable") and index < count:
        tick.ensure("stable", max(stable_replicas, stable.desired))

    wait = tick.busy_wait()
    waiting_on_instances = False
    mark, seen = None, None  # how far an experiment's slots have come (the deadline's clock)
    message = ""
    if held:
        tick.hold_clock()
        tick.waiting_for_promotion = True
        wait, message = PAUSED_WAIT, held
    while index < count and not held:
        _start_background(tick, background, index)
        step = steps[index]
        if "set_weight" in step:
            target = step["set_weight"]
            size = canary_size(spec, target, scale)
            tick.ensure("canary", size)
            if size > 0 and canary.available < size:
                waiting_on_instances = True
                message = f"{canary.available}/{size} instances of the new release available"
                break
            tick.route_to(_split(target), rules=rules)
            weight = target
        elif "analysis" in step:
            key = f"step-{index}"
            verdict, reason = tick.analysis(key, step["analysis"], step_index=index)
            tick.hold_clock()
            if verdict == "fail":
                return tick.give_up(
                    analysis_failed(key, {**step["analysis"], "reason": reason}), step_index=index
                )
            if verdict == "inconclusive":
                tick.waiting_for_promotion = True
                wait, message = PAUSED_WAIT, analysis_inconclusive(key, reason)
                break
            if verdict != "pass":
                wait = ANALYSIS_WAIT
                message = f"{spec_analysis.words(step['analysis'])}: {reason}"
                break
            tick.unwatch(key)
        elif "pause" in step:
            seconds = step["pause"].get("duration")
            tick.hold_clock()
            if seconds is None:
                tick.waiting_for_promotion = True
                wait = PAUSED_WAIT
                message = "waiting for promotion"
                break
            started = state.setdefault("pause_started_at", obs.now)
            left = seconds - (obs.now - started)
            if left > 0:
                wait = min(left, MAX_WAIT)
                # whole seconds, as the page's countdown shows them (not "1.869s")
                message = f"pausing {format_duration(math.ceil(left))} more"
                break
            state.pop("pause_started_at")
        elif "experiment" in step:
            outcome, message, seconds = _experiment(tick, index, step["experiment"], weight, rules)
            if outcome == "fail":
                return tick.give_up(message, step_index=index)
            if outcome == "instances":
                waiting_on_instances = True
                mark, seen = [index, seconds], f"{message} at step {index + 1}"
                break
            if outcome != "done":
                tick.waiting_for_promotion = outcome == "promotion"
                wait = seconds
                break
        elif "set_header_route" in step or "set_mirror_route" in step:
            # only reached on a target whose router can (required_capabilities)
            ((kind, route),) = step.items()
            routes = dict(state.get("routes") or {})
            routes.pop(f"{kind}:{route['name']}", None)
            if route["match"]:
                routes[f"{kind}:{route['name']}"] = {kind: route}
            state["routes"] = routes
            rules = _with_routes(rules_of(spec), routes)
            tick.route_to(_split(weight), rules=rules)
        else:
            scale = step["set_canary_scale"]
            size = canary_size(spec, weight, scale)
            tick.ensure("canary", size)
            if canary.available < size:
                waiting_on_instances = True
                message = f"{canary.available}/{size} instances of the new release available"
                break
        index += 1
        _started(tick, index)
    state.update(index=index, weight=weight, scale=scale)

    if index >= count and not held:  # promotion
        tick.ensure("canary", stable_replicas)
        routed = tick.routed()
        keep = keep_previous and state.get("had_stable")
        over = canary.available >= stable_replicas if keep else stable.desired == 0
        if over and routed is not None and routed.weights == CANARY_ONLY:
            done = f"rollout done: {stable_replicas}/{stable_replicas} on the new release"
            if keep:  # the rollback window: the caller keeps the old release warm, then retires it
                done += "; the old release stays warm at 0% traffic (the rollback window)"
            tick.event("done", done)
            return tick.finish(step_index=count, message="rollout done", wait=0.0, outcome="done")
        if canary.available >= stable_replicas:
            tick.route_to(CANARY_ONLY)
            if state.get("background") == "on":  # its work is done once the canary is all
                tick.unwatch(BACKGROUND, stop=True)
                state["background"] = "off"
            state["weight"] = 100
            if keep:
                message = "100% on the new release; the old release stays warm"
            else:
                tick.ensure("stable", 0)
                state["released_stable"] = True
                message = "100% on the new release; scaling the old release down"
            wait = 0.0
        else:
            waiting_on_instances = True
            message = (
                f"promoting: {canary.available}/{stable_replicas} instances of the new release "
                "available"
            )

    if waiting_on_instances:
        tick.note_progress(mark or [index, canary.available])
        if tick.overdue():
            return tick.fail(seen or _seen(tick, index), step_index=min(index, count))
    at = min(index, count)
    head = f"step {at + 1} of {count + 1}"
    split = f"{state['weight']}% of requests on the new release"
    return tick.finish(step_index=at, message=f"{head}: {message}; {split}", wait=wait)


def decide_rollback(spec: dict[str, Any], progress: dict[str, Any], obs: Observation) -> Decision:
    """Weight back to 0 at once (the old release is fully scaled), rules off; the canary's
    instances are kept for inspection and scaled down later by the caller."""
    return switch_back(spec, progress, obs)


def _start_background(tick: Tick, background: dict[str, Any] | None, index: int) -> None:
    """Start the background analysis once its step begins (once only)."""
    state = tick.progress
    if background is None or "background" in state or index < background["start_at_step"]:
        return
    state["background"] = "on"
    tick.analysis(BACKGROUND, background, step_index=None)


def _experiment(
    tick: Tick, index: int, step: dict[str, Any], weight: int, rules: dict[str, Any] | None
) -> tuple[str, str, float]:
    """Carry out the experiment step ``index``: (outcome, message, seconds). Outcomes: "done"
    (it has ended: next step), "instances" (its slots are not all available yet; seconds: how
    many are), "waiting" (it runs; seconds: look again then), "promotion" (it runs until a
    person promotes), "inconclusive" (an analysis was: a person decides), "fail" (an analysis
    failed; message: why)."""
    state = tick.progress
    running = state.get("experiment")
    if running is None or running.get("index") != index:
        stable_needed = any(t["spec_ref"] == "stable" for t in step["templates"])
        if stable_needed and not state.get("had_stable"):
            tick.event(
                "experiment",
                "experiment skipped: there is no old release to run a baseline of",
                step_index=index,
            )
            return "done", "", 0.0
        slots = {
            spec_experiment.slot_key(index, t["name"]): {
                "release": t["spec_ref"],
                "replicas": t["replicas"],
            }
            for t in step["templates"]
        }
        running = state["experiment"] = {"index": index, "slots": slots, "ready_at": None}
        tick.event("experiment", "experiment started: its slots are starting", step_index=index)
        tick.keep_experiment()
    if running["ready_at"] is None:
        wanted = sum(slot["replicas"] for slot in running["slots"].values())
        available = sum(
            min(_available(tick, key), slot["replicas"]) for key, slot in running["slots"].items()
        )
        if available < wanted:
            return (
                "instances",
                f"{available}/{wanted} instances of the experiment available",
                (float(available)),
            )
        running["ready_at"] = tick.now
        tick.event("experiment", "experiment running: every slot is available", step_index=index)
    tick.route_to(_experiment_split(index, step, weight), rules=rules)
    tick.hold_clock()  # it waits on purpose from here on
    arms = spec_experiment.arms(index, step)
    pending = []
    for analysis in step["analyses"]:
        key = spec_experiment.analysis_key(index, analysis["name"])
        verdict, reason = tick.analysis(key, {**analysis, "arms": arms}, step_index=index)
        if verdict == "fail":
            return "fail", analysis_failed(key, {**analysis, "reason": reason}), 0.0
        if verdict == "inconclusive":
            return "promotion", analysis_inconclusive(key, reason), PAUSED_WAIT
        if verdict != "pass" and analysis["required_for_completion"]:
            pending.append(analysis["name"])
    seconds = step["duration"]
    if seconds is None and not any(a["required_for_completion"] for a in step["analyses"]):
        return "promotion", "the experiment runs until promoted", PAUSED_WAIT
    left = 0.0 if seconds is None else running["ready_at"] + seconds - tick.now
    if left > 0:
        more = format_duration(math.ceil(left))
        return "waiting", f"the experiment runs {more} more", min(left, MAX_WAIT)
    if pending:
        names = ", ".join(repr(name) for name in pending)
        return "waiting", f"the experiment waits for its analyses {names} to pass", ANALYSIS_WAIT
    tick.event("experiment", "experiment done: its slots are torn down", step_index=index)
    _end_experiment(tick, weight, rules)
    return "done", "", 0.0


def _end_experiment(tick: Tick, weight: int, rules: dict[str, Any] | None) -> None:
    """End the experiment in progress, if any: its analyses stop, its slots are torn down and its
    share of requests goes back to the old release."""
    running = tick.progress.pop("experiment", None)
    if running is None:
        return
    step = tick.spec["steps"][running["index"]]["experiment"]
    for analysis in step["analyses"]:
        tick.unwatch(spec_experiment.analysis_key(running["index"], analysis["name"]), stop=True)
    tick.experiment = {}
    if running.get("ready_at") is not None:
        tick.route_to(_split(weight), rules=rules)


def _available(tick: Tick, key: str) -> int:
    seen = tick.obs.experiment.get(key)
    return 0 if seen is None else seen.available


def _experiment_split(index: int, step: dict[str, Any], weight: int) -> dict[str, int]:
    """The weights while the experiment runs: its slots' shares come out of the old release's."""
    shares = {
        f"experiment:{spec_experiment.slot_key(index, t['name'])}": t["weight"]
        for t in step["templates"]
        if t["weight"]
    }
    return {"stable": 100 - weight - sum(shares.values()), "canary": weight, **shares}


def _skip_analysis(tick: Tick, index: int) -> None:
    """A person promoted past the analysis step ``index``: its verdict no longer matters."""
    steps = tick.spec["steps"]
    if index < len(steps) and "analysis" in steps[index]:
        tick.unwatch(f"step-{index}", stop=True)


def rules_of(spec: dict[str, Any]) -> dict[str, Any] | None:
    """The header/cookie/sticky rules of a normalised canary spec, None if it has none."""
    route = spec.get("route") or {}
    rules = {key: route.get(key) for key in ("header", "cookie", "sticky_key")}
    return rules if any(rules.values()) else None


def _with_routes(
    rules: dict[str, Any] | None, routes: dict[str, Any] | None
) -> dict[str, Any] | None:
    """The rules with the named header and mirror routes in force (``set_header_route``,
    ``set_mirror_route``) as ``header_routes`` / ``mirror_routes`` lists, in name order."""
    if not routes:
        return rules
    out = dict(rules or {"header": None, "cookie": None, "sticky_key": None})
    for kind, key in (("set_header_route", "header_routes"), ("set_mirror_route", "mirror_routes")):
        picked = [routes[name][kind] for name in sorted(routes) if name.startswith(kind + ":")]
        if picked:
            out[key] = picked
    return out


def _seen(tick: Tick, index: int) -> str:
    canary = tick.obs.canary
    seen = f"{canary.ready} instance(s) of the new release ready at step {index + 1}"
    if canary.failed:
        seen += f", {instances(canary.failed)} failing health checks"
    return seen


def _split(weight: int) -> dict[str, int]:
    return {"stable": 100 - weight, "canary": weight}


def _started(tick: Tick, index: int) -> None:
    total = len(tick.steps)
    tick.event(
        "step", f"step {index + 1} of {total} started: {tick.steps[index]}", step_index=index
    )
