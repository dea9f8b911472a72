"""The values the engine reads and returns each tick: ``RoleState`` and ``Observation`` (what the
target looks like now) and ``Decision`` (what to do about it). ``strategies.engine`` re-exports
them; they live here so the per-strategy planners can use them without importing the engine."""

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


@dataclass
class Decision:
    # role ("stable"/"canary") -> replicas to ensure this tick (roles left out: leave alone)
    scale: dict[str, int]
    # routing to apply if `route`: {"stable": 75, "canary": 25} summing to 100, or None = evenly
    # across every ready instance of both slots
    weights: dict[str, int] | None
    route: bool  # apply `weights` this tick
    progress: dict  # JSON-serialisable progress to store for the next tick (engine owns it)
    step_index: int  # index into describe_steps(spec)
    step: str  # describe_steps(spec)[step_index] or a rollback description
    wait: float  # seconds until the next tick should run
    outcome: str | None = None  # None: continue; "done": rollout finished; "restored": rollback
    failure: str | None = None  # the rollout failed (the caller then switches to "rollback")
    waiting_for_promotion: bool = False  # a step waits for a person (canary, later)
    events: list[dict] = field(default_factory=list)  # what HAPPENED this tick
    message: str = ""  # one line describing the current situation
