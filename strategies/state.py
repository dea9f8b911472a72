"""The values the engine reads and returns each tick: ``RoleState`` and ``Observation`` (what the
target looks like now), ``Decision`` (what to do about it) and ``RoutePlan`` (routing known before
looking). ``strategies.engine`` re-exports them; they live here so the per-strategy planners can
use them without importing the engine."""

from __future__ import annotations

from dataclasses import dataclass, field

ROLES = ("stable", "canary")


@dataclass(frozen=True)
class RoleState:
    version: str | None  # release running in this role's slot (None if nothing)
    desired: int  # instances the provider was last asked for
    ready: int  # instances passing health checks now
    available: int  # ready for at least the spec's min_ready seconds
    failed: int  # unhealthy or crashed instances


@dataclass(frozen=True)
class Observation:
    now: float  # unix seconds
    stable: RoleState  # the slot serving the current (old) release
    canary: RoleState  # the slot receiving the new release ("canary" for every strategy)
    # results of checks the caller ran because an earlier Decision asked (``run_smoke``):
    # {"smoke": {"passed": bool, "results": [{"path", "ok", "message", ...}], "at": unix s}}
    checks: dict = field(default_factory=dict)
    # the latest run of each analysis this deployment asked for (``Decision.start_analysis``), by
    # key, from ``releases.analysis.runs.evaluate``: {"step-3": {"decision": "pass" | "fail" |
    # "inconclusive" | "running", "reason": "...", "template": "error-rate", "score": 100.0 | None,
    # "id": 17, "step_index": 3}}; a key the caller has not started yet is absent
    analysis: dict = field(default_factory=dict)
    # the slots of a canary's experiment step (``strategies.spec_experiment``) the target runs
    # for this deployment, by key ("1-baseline"); a key with no slot is absent
    experiment: dict = field(default_factory=dict)


@dataclass(frozen=True)
class RoutePlan:
    """Routing for both roles: what ``Decision`` carries when ``route`` is set, and what
    ``engine.routing_before_observing`` returns when a tick's routing is known up front."""

    weights: dict[str, int] | None  # {"stable": 100, "canary": 0}, None = evenly
    preview: bool = False  # the canary role is reachable on the target's preview endpoint
    rules: dict | None = None  # {"header", "cookie", "sticky_key"} targeting rules, None = none


@dataclass
class Decision:
    # role ("stable"/"canary") -> replicas to ensure this tick (roles left out: leave alone)
    scale: dict[str, int]
    # routing to apply if `route`: {"stable": 75, "canary": 25} summing to 100, or None = evenly
    # across every ready instance of both slots
    weights: dict[str, int] | None
    route: bool  # apply `weights` (and `preview`, `rules`) this tick
    progress: dict  # JSON-serialisable progress to store for the next tick (engine owns it)
    step_index: int  # index into describe_steps(spec)
    step: str  # describe_steps(spec)[step_index] or a rollback description
    wait: float  # seconds until the next tick should run
    outcome: str | None = None  # None: continue; "done": rollout finished; "restored": rollback
    failure: str | None = None  # the rollout failed (the caller then switches to "rollback")
    # a step waits for a person (blue-green promotion gate, canary `pause: {}`): the caller
    # moves the deployment to paused ("waiting for promotion"); promote continues it
    waiting_for_promotion: bool = False
    events: list[dict] = field(default_factory=list)  # what HAPPENED this tick
    message: str = ""  # one line describing the current situation
    # with `route`: expose the canary role on the target's preview endpoint (blue-green)
    preview: bool = False
    # with `route`: header/cookie/sticky targeting {"header", "cookie", "sticky_key"} (canary)
    rules: dict | None = None
    # smoke checks the caller runs against the preview after acting, storing the result as
    # ``checks["smoke"]`` for the next tick's Observation: [{"path", "status", "body_contains"}]
    run_smoke: list[dict] | None = None
    # with outcome "restored": the new release's slot was kept for inspection; the caller scales
    # it down this many seconds later (unless another deployment uses it by then)
    cleanup_after: float | None = None
    # analyses the caller starts after acting (starting one is idempotent: a run with the key
    # that is still measuring is kept): [{"key": "step-3", "template": "error-rate",
    # "args": {"max": "0.05"}, "step_index": 3}]; their verdicts come back in
    # ``Observation.analysis``
    start_analysis: list[dict] | None = None
    # keys of running analyses the caller stops (each judged on what it measured so far)
    stop_analysis: list[str] | None = None
    # every experiment slot this deployment should run now, by key: {"1-baseline": {"release":
    # "stable" | "canary", "replicas": 1}} (the whole set, not a change: the caller starts or
    # resizes what differs and removes the deployment's experiment slots not in it; None: none)
    experiment: dict | None = None

    @property
    def route_plan(self) -> RoutePlan | None:
        """The routing to apply this tick, or None."""
        if not self.route:
            return None
        return RoutePlan(self.weights, self.preview, self.rules)
