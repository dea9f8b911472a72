"""Rolling update planner: replaces the old release batch by batch, like a Kubernetes Deployment
rollout with a gate after each batch.

With R replicas, S = max_surge, U = max_unavailable and B = batch_size (resolved by
``spec.rolling_sizes``), batch k aims for goal_k = min(R, k*B) instances of the new release. Each
tick the canary slot grows toward goal_k while stable.desired + canary.desired stays <= R + S
(counting the stable slot as it is now, so the order the caller applies the two scales in does not
matter), and the stable slot shrinks only as far as keeps
stable.ready + canary.available - removed >= R - U (removed instances are taken from the
unready ones first, then counted as ready) and
never below R - goal_k. A batch is complete when canary.available >= goal_k and
stable.desired <= R - goal_k; the rollout is done when canary.available >= R and stable.desired
is 0, and then routes 100% to the new release. Until then traffic is spread evenly over every
ready instance of both slots.

With an ``analysis`` in the spec, each batch but the last ends with an analysis of the new
release's instances against the old ones (key ``batch-<k>``, started once the batch is complete):
the next batch starts when it passes; fail -> the rollout fails (the caller rolls back);
inconclusive -> ``waiting_for_promotion`` (a person decides).

Intent (forward mode only; the caller clears it after the tick): "promote" starts the next batch
without waiting for the current one to complete (or for its analysis, which is stopped);
"promote_full" goes straight to the last batch (all R on the new release). Neither relaxes
max_surge or max_unavailable.

Rollback restores the old release before stopping the new one (see ``strategies.rollback``).

``keep_previous`` (the caller's rollback window, docs/loop.md): the done tick also starts R
instances of the old release again in its slot, behind the 100%/0% routing it applies, so the
caller can keep them warm for a switch back. (A rolling update gives up old instances as it goes:
keeping them all would break ``max_surge``.)
Progress keys owned here: ``batch`` (1-based).
"""

from __future__ import annotations

from typing import Any

from strategies import spec_analysis
from strategies.rollback import restore
from strategies.spec import rolling_sizes
from strategies.state import Decision, Observation
from strategies.tick import (
    ANALYSIS_WAIT,
    PAUSED_WAIT,
    Tick,
    analysis_failed,
    analysis_inconclusive,
)


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
    replicas, surge, unavailable, size = rolling_sizes(spec)
    count = len(tick.steps)
    stable, canary = obs.stable, obs.canary

    def goal(k: int) -> int:
        return min(replicas, k * size)

    if "batch" not in tick.progress:
        _started(tick, 1, count, goal(1))
    batch = min(count, max(1, int(tick.progress.get("batch", 1))))
    failure = tick.analysis_failure()
    if failure is not None:
        return tick.give_up(failure, step_index=batch - 1)
    analysis = spec.get("analysis")
    if intent in ("promote", "promote_full") and batch < count:
        tick.unwatch(f"batch-{batch}", stop=True)
    if intent == "promote_full" and batch < count:
        batch = count
        tick.event(
            "promote",
            f"promoted in full: going straight to {replicas}/{replicas} on the new release",
            batch=batch,
        )
    elif intent == "promote" and batch < count:
        batch += 1
        tick.event(
            "promote",
            f"promoted: batch {batch} of {count} started without waiting for batch {batch - 1}",
            batch=batch,
        )
    analysing = ""  # what the current batch's analysis says while the next batch waits for it
    while (
        batch < count
        and canary.available >= goal(batch)
        and stable.desired <= replicas - goal(batch)
    ):
        if analysis is not None:
            key = f"batch-{batch}"
            verdict, reason = tick.analysis(key, analysis, step_index=batch - 1)
            if verdict == "fail":
                failed = analysis_failed(key, {**analysis, "reason": reason})
                return tick.give_up(failed, step_index=batch - 1)
            if verdict == "inconclusive":
                tick.waiting_for_promotion = True
                analysing = analysis_inconclusive(key, reason)
                break
            if verdict != "pass":
                analysing = f"{spec_analysis.words(analysis)}: {reason}"
                break
            tick.unwatch(key)
        batch += 1
        _started(tick, batch, count, goal(batch))
    tick.progress["batch"] = batch
    tick.note_progress([batch, canary.available])
    if analysing:  # waiting on purpose: not stuck
        tick.hold_clock()

    if canary.available >= replicas and stable.desired == 0:
        tick.route_to({"stable": 0, "canary": 100})
        done = f"rollout done: {replicas}/{replicas} instances on the new release"
        if keep_previous and tick.progress.get("had_stable"):
            # the rollback window: the old release is started again behind the 0% route (after
            # the routing: ``route_to`` above takes every request off it first)
            tick.ensure("stable", replicas)
            done += "; the old release is started again, warm at 0% traffic (the rollback window)"
        tick.event("done", done)
        return tick.finish(step_index=count - 1, message="rollout done", wait=0.0, outcome="done")
    if tick.overdue():
        return tick.fail(
            f"batch {batch} of {count}, {tick.new_release_seen()}", step_index=batch - 1
        )

    target = goal(batch)
    tick.ensure("canary", max(canary.desired, min(target, replicas + surge - stable.desired)))
    spare = max(0, stable.ready + canary.available - (replicas - unavailable))
    # instances of the old release that are not ready cost no availability to remove (providers
    # remove unready instances first), so a crashed old instance cannot stall the rollout
    not_ready = max(0, stable.desired - stable.ready)
    floor = max(0, replicas - target, stable.desired - spare - not_ready)
    tick.ensure("stable", min(stable.desired, floor))
    tick.route_to(None)
    message = (
        f"batch {batch} of {count}: {canary.available}/{replicas} instances of the new release "
        f"available ({canary.ready} ready), {stable.desired} of the old release left"
    )
    wait = tick.busy_wait()
    if analysing:
        message += f"; {analysing}"
        wait = PAUSED_WAIT if tick.waiting_for_promotion else ANALYSIS_WAIT
    return tick.finish(step_index=batch - 1, message=message, wait=wait)


def decide_rollback(spec: dict[str, Any], progress: dict[str, Any], obs: Observation) -> Decision:
    """Scale the old release back to R at once, route to it when one instance is ready, and stop
    the new release only once all R old instances are ready."""
    return restore(spec, progress, obs, drain_first=True)


def _started(tick: Tick, batch: int, count: int, goal: int) -> None:
    replicas = tick.replicas
    message = f"batch {batch} of {count} started: {goal}/{replicas} on the new release"
    tick.event("step", message, batch=batch, of=count, goal=goal, step_index=batch - 1)
