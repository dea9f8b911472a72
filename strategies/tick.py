"""Bookkeeping every strategy planner shares within one tick of ``decide``.

``Tick`` wraps the inputs of one call (spec, a private copy of progress, the observation) and
collects what the planner decides: scale changes (only ones the observation does not already
show), routing (only when it differs from what was last routed), events, the progress deadline
clock and the health-failure watch. ``hold`` is the whole of paused mode, the same for every kind.

Progress keys owned here: ``started_at``, ``last_progress_at``, ``mark`` (the furthest point the
rollout has reached, compared as a list), ``paused_at``, ``had_stable`` (whether an old release
was running when the rollout began), ``weights``, ``preview`` and ``rules`` (what was last
routed; the last two only while set), ``failed`` (failing instances per role last seen),
``step_index`` and ``watching``.

Analyses (``Tick.analysis``): a planner that needs a verdict asks for the analysis by key; the
first time (the key is not in ``Observation.analysis`` yet) the decision asks the caller to start
it. From then on the key is *watched* (``watching``) until the planner lets it go: a watched
analysis that fails fails the rollout on any forward or paused tick (``analysis_failure``), so
background analysis, or a step's analysis the operator paused in the middle of, still rolls back
by itself.
"""

from __future__ import annotations

import copy
from typing import Any

from strategies.spec import describe_steps, health_of, min_ready_of, replicas_of
from strategies.state import ROLES, Decision, Observation, RoleState, RoutePlan

PAUSED_WAIT = 5.0
# look again at least this often while an analysis measures; sooner when its next measurement is
# due (the reconcile tick asks for the measurement's time). It was 1 s: 100 canaries measuring
# every 30 s still asked for 100 ticks a second (docs/serving.md)
ANALYSIS_WAIT = 5.0
ROUTING_KEYS = ("weights", "preview", "rules")
RELEASE_NAMES = {"stable": "the old release", "canary": "the new release"}


class Tick:
    """One call of ``decide``: its inputs and the decision being built."""

    def __init__(self, spec: dict[str, Any], progress: dict[str, Any], obs: Observation):
        self.spec = spec
        self.obs = obs
        self.now = obs.now
        self.replicas: int = replicas_of(spec)
        self.steps = describe_steps(spec)
        self.progress = copy.deepcopy(progress or {})
        self._routed_before = {k: v for k, v in self.progress.items() if k in ROUTING_KEYS}
        self.scale: dict[str, int] = {}
        self.weights: dict[str, int] | None = None
        self.route = False
        self.preview = False
        self.rules: dict | None = None
        self.run_smoke: list[dict] | None = None
        self.waiting_for_promotion = False
        self.cleanup_after: float | None = None
        self.start_analysis: list[dict[str, Any]] = []
        self.stop_analysis: list[str] = []
        self.events: list[dict[str, Any]] = []
        self.experiment: dict[str, dict[str, Any]] = {}

    def role(self, name: str) -> RoleState:
        return getattr(self.obs, name)

    def begin(self) -> None:
        """Start a forward or rollback tick: stop the pause clock, notice new health failures."""
        paused_at = self.progress.pop("paused_at", None)
        if paused_at is not None and "last_progress_at" in self.progress:
            self.progress["last_progress_at"] += max(0.0, self.now - paused_at)
        seen = self.progress.setdefault("failed", {})
        for name in ROLES:
            failed = self.role(name).failed
            if failed > seen.get(name, 0):
                self.event(
                    "health",
                    f"{instances(failed)} of {RELEASE_NAMES[name]} failing health checks",
                    role=name,
                    failed=failed,
                )
            seen[name] = failed

    def begin_forward(self) -> None:
        """``begin``, and on the first tick start the progress deadline clock."""
        if "started_at" not in self.progress:
            stable = self.obs.stable
            self.progress.update(
                started_at=self.now,
                last_progress_at=self.now,
                had_stable=stable.version is not None or stable.desired > 0,
            )
        self.begin()

    def ensure(self, role: str, replicas: int) -> None:
        """Ask for ``replicas`` instances of ``role`` unless that is what was last asked for (a
        later call in the same tick replaces an earlier one)."""
        if replicas != self.role(role).desired:
            self.scale[role] = replicas
        else:
            self.scale.pop(role, None)

    def keep_experiment(self) -> None:
        """Keep the slots of the experiment in progress (``progress["experiment"]["slots"]``)
        running this tick; a tick that does not call this tears them down."""
        running = (self.progress.get("experiment") or {}).get("slots") or {}
        self.experiment = copy.deepcopy(running)

    def route_to(
        self,
        weights: dict[str, int] | None,
        *,
        preview: bool = False,
        rules: dict | None = None,
        force: bool = False,
    ) -> None:
        """Route by ``weights`` (None: evenly), with the preview and targeting rules given,
        unless that is what was last routed (``force``: route anyway)."""
        if not force and self.routed() == RoutePlan(weights, preview, rules):
            return
        changed = "weights" not in self.progress or self.progress["weights"] != weights
        self.weights, self.preview, self.rules, self.route = weights, preview, rules, True
        self.progress["weights"] = weights
        for key, value in (("preview", preview), ("rules", rules)):
            if value:
                self.progress[key] = value
            else:
                self.progress.pop(key, None)
        if changed:
            said = "evenly across ready instances" if weights is None else _split(weights)
            self.event("weights", f"traffic routed {said}", weights=weights)

    def routed(self) -> RoutePlan | None:
        """What was last routed (None if nothing yet)."""
        if "weights" not in self.progress:
            return None
        progress = self.progress
        return RoutePlan(progress["weights"], progress.get("preview", False), progress.get("rules"))

    def hold_clock(self) -> None:
        """A step that waits on purpose (a pause, a promotion gate, a scale-down delay) is not
        stuck: keep the progress deadline clock from running."""
        self.progress["last_progress_at"] = self.now

    def analysis(self, key: str, ref: dict[str, Any], *, step_index: int | None) -> tuple[str, str]:
        """Where the analysis ``key`` (of template ``ref``) stands: ("running" | "pass" | "fail" |
        "inconclusive", its reason). Asks the caller to start it if it has not, and watches it.

        A reference to several ``templates`` runs one analysis per template side by side (keys
        ``key``, ``key.2``, ``key.3``...): it fails as soon as one fails, is inconclusive once
        none runs and one is, and passes when all pass."""
        verdicts = []
        for part, template in _parts(key, ref):
            watching = self.progress.setdefault("watching", [])
            if part not in watching:
                watching.append(part)
            seen = self.obs.analysis.get(part)
            if seen is None:
                own = (ref.get("per_template") or {}).get(template) or {}
                request = {
                    "key": part,
                    "template": template,
                    "args": {**(ref.get("args") or {}), **(own.get("args") or {})},
                    "step_index": step_index,
                    **_overrides(ref),
                    **({"arms": dict(ref["arms"])} if ref.get("arms") else {}),
                }
                if own.get("failure_limit") is not None:
                    overrides = {
                        **request.get("overrides", {}),
                        "failure_limit": own["failure_limit"],
                    }
                    request["overrides"] = overrides
                self.start_analysis.append(request)
                verdicts.append(("running", "starting"))
            else:
                decision = str(seen.get("decision") or "running")
                verdicts.append((decision, str(seen.get("reason") or "")))
        for wanted in ("fail", "running", "inconclusive"):
            for verdict in verdicts:
                if verdict[0] == wanted:
                    return verdict
        return verdicts[-1]

    def unwatch(self, key: str, *, stop: bool = False) -> None:
        """Stop watching ``key`` and its other templates' parts (its verdict no longer
        matters); ``stop``: and end their runs if they are still measuring."""
        watching = self.progress.get("watching") or []
        for part in [k for k in watching if k == key or _is_part(k, key)] or [key]:
            if part in watching:
                watching.remove(part)
            if stop and (self.obs.analysis.get(part) or {}).get("decision") == "running":
                self.stop_analysis.append(part)
        if not watching:
            self.progress.pop("watching", None)

    def watching(self) -> list[str]:
        return list(self.progress.get("watching") or [])

    def analysis_failure(self) -> str | None:
        """Why the rollout fails, if a watched analysis failed."""
        for key in self.watching():
            seen = self.obs.analysis.get(key) or {}
            if seen.get("decision") == "fail":
                return analysis_failed(key, seen)
        return None

    def event(self, kind: str, message: str, **data: Any) -> None:
        self.events.append({"kind": kind, "message": message, "data": data})

    def note_progress(self, mark: list[int]) -> None:
        """Restart the deadline clock if ``mark`` is further than any point reached before."""
        if "mark" not in self.progress or mark > self.progress["mark"]:
            self.progress["mark"] = mark
            self.progress["last_progress_at"] = self.now

    def overdue(self) -> bool:
        deadline = self.spec["progress_deadline"]
        return self.now - self.progress.get("last_progress_at", self.now) > deadline

    def fail(self, seen: str, *, step_index: int) -> Decision:
        """The progress deadline passed: report ``seen`` and leave everything as it is."""
        failure = (
            f"no progress for {self.spec['progress_deadline']:g} s (progress deadline): {seen}"
        )
        return self.give_up(failure, step_index=step_index)

    def give_up(self, failure: str, *, step_index: int) -> Decision:
        """The rollout failed (``failure`` says why): change nothing more, report it."""
        self.scale, self.route, self.weights = {}, False, None
        self.run_smoke, self.waiting_for_promotion = None, False
        self.start_analysis, self.stop_analysis = [], []
        self.experiment = {}  # an experiment in progress is torn down with the rest
        for key in ROUTING_KEYS:  # nothing is routed after all
            self.progress.pop(key, None)
        self.progress.update(copy.deepcopy(self._routed_before))
        self.event("failure", failure)
        return self.finish(step_index=step_index, message=failure, wait=0.0, failure=failure)

    def new_release_seen(self) -> str:
        """How the new release stands, for a failure message: "1/4 instances ... ready"."""
        canary, min_ready = self.obs.canary, min_ready_of(self.spec)
        seen = f"{canary.ready}/{self.replicas} instances of the new release ready"
        if min_ready > 0 and canary.available != canary.ready:
            seen += f" ({canary.available} of them for at least {min_ready:g} s)"
        if canary.failed:
            seen += f", {instances(canary.failed)} failing health checks"
        return seen

    def busy_wait(self) -> float:
        """How soon to look again while instances are changing: the health interval, 0.25–1 s."""
        return min(1.0, max(0.25, float(health_of(self.spec)["interval"])))

    def finish(
        self,
        *,
        step_index: int,
        message: str,
        wait: float,
        step: str | None = None,
        outcome: str | None = None,
        failure: str | None = None,
    ) -> Decision:
        self.progress["step_index"] = step_index
        return Decision(
            scale=dict(self.scale),
            weights=self.weights if self.route else None,
            route=self.route,
            progress=self.progress,
            step_index=step_index,
            step=self.steps[step_index] if step is None else step,
            wait=wait,
            outcome=outcome,
            failure=failure,
            waiting_for_promotion=self.waiting_for_promotion,
            events=self.events,
            message=message,
            preview=self.preview if self.route else False,
            rules=self.rules if self.route else None,
            run_smoke=self.run_smoke,
            cleanup_after=self.cleanup_after,
            start_analysis=list(self.start_analysis) or None,
            stop_analysis=list(self.stop_analysis) or None,
            experiment=dict(self.experiment) or None,
        )


def hold(spec: dict[str, Any], progress: dict[str, Any], obs: Observation) -> Decision:
    """Paused mode: change nothing, look again in a few seconds, and stop the deadline clock
    (``paused_at`` is recorded; the next forward tick moves ``last_progress_at`` on by the
    time spent paused). A watched analysis that failed fails the rollout even now."""
    tick = Tick(spec, progress, obs)
    tick.keep_experiment()  # a pause keeps an experiment's slots running
    tick.progress.setdefault("paused_at", obs.now)
    index = min(int(tick.progress.get("step_index", 0)), len(tick.steps) - 1)
    failure = tick.analysis_failure()
    if failure is not None:
        return tick.give_up(failure, step_index=index)
    step = tick.steps[index]
    wait = ANALYSIS_WAIT if _measuring(tick) else PAUSED_WAIT
    return tick.finish(step_index=index, message=f"paused at {step}", wait=wait)


def key_words(key: str) -> str:
    """An analysis key as the page numbers steps: ``step-3`` (an index) reads "step 4"."""
    head, _, index = key.partition("-")
    return f"step {int(index) + 1}" if head == "step" and index.isdigit() else key


def analysis_failed(key: str, seen: dict[str, Any]) -> str:
    """The failure of a rollout whose analysis ``key`` failed: names the template, the metric
    and why ("analysis 'error-rate' (step-2) failed: errors: the canary's error rate ...")."""
    template = seen.get("template") or "?"
    reason = seen.get("reason") or "no reason given"
    return f"analysis {template!r} ({key_words(key)}) failed: {reason}"


def analysis_inconclusive(key: str, seen_reason: str) -> str:
    """The message of a rollout paused by an inconclusive analysis."""
    reason = seen_reason.strip() or "no reason given"
    if not reason.endswith((".", "!", "?")):
        reason += "."
    return (
        f"analysis inconclusive ({key_words(key)}): {reason} Promote to continue past it, "
        "or roll back"
    )


def _measuring(tick: Tick) -> bool:
    return any(
        (tick.obs.analysis.get(key) or {}).get("decision") == "running" for key in tick.watching()
    )


def instances(count: int) -> str:
    """ "1 instance", "3 instances"."""
    return f"{count} instance{'' if count == 1 else 's'}"


def _split(weights: dict[str, int]) -> str:
    shares = [(role, weight) for role, weight in weights.items() if weight]
    return ", ".join(f"{weight}% to {RELEASE_NAMES.get(role, role)}" for role, weight in shares)


def _parts(key: str, ref: dict[str, Any]) -> list[tuple[str, str]]:
    """(analysis key, template) of each template of ``ref``: ``key`` for the first, then
    ``key.2``, ``key.3``..."""
    names = ref.get("templates") or [ref["template"]]
    return [(key if n == 0 else f"{key}.{n + 1}", name) for n, name in enumerate(names)]


def _is_part(candidate: str, key: str) -> bool:
    head, _, tail = candidate.rpartition(".")
    return head == key and tail.isdigit()


def _overrides(ref: dict[str, Any]) -> dict[str, Any]:
    """What a reference replaces in every metric of its templates (``failure_limit``,
    ``interval``: Flagger's ``threshold`` and ``interval``), as the start request's key."""
    keys = ("failure_limit", "interval", "measurement_retention")
    given = {k: ref[k] for k in keys if ref.get(k) is not None}
    return {"overrides": given} if given else {}
