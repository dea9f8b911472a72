"""Protocols every integration implements, in plain values (no Django models cross this line).

A *slot* is a named group of identical instances of one release behind the target's router
(``blue``/``green`` for the local fleet). The reconcile loop decides which slot is stable and which
receives the new release; the integration only does what it is told, idempotently:
"slot green runs 1.4.2 with 3 replicas", "route 95/5", never "add one".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


class IntegrationError(Exception):
    """An integration call failed.

    ``permanent`` says whether trying again can help: a refused token or an invalid artifact is
    permanent (the step fails with this message); a connection reset is not (the tick retries).
    """

    def __init__(self, message: str, *, permanent: bool = False):
        super().__init__(message)
        self.message = message
        self.permanent = permanent


class StaleFence(IntegrationError):
    """The target refused a routing or scale call whose fencing generation is older than one it
    has already applied: the caller lost its claim on the deployment to a newer tick and must
    abandon (nothing was changed).

    Fencing: the reconcile loop sets ``target.fence`` before it acts, a pair ``(deployment id,
    claim generation)`` that only grows for a target (one claim after another; a newer deployment
    has a larger id). A provider that can enforce it sends it with every ``ensure_slot``,
    ``set_weights``, ``set_routing`` and ``remove_slot`` and raises this when refused (the local
    fleet agent keeps the highest fence applied per target). A provider that cannot ignores it.
    """

    def __init__(self, message: str):
        super().__init__(message, permanent=True)


@dataclass(frozen=True)
class ReleaseRef:
    """What a slot should run: the release's version and its artifact (provider specific)."""

    version: str
    artifact: dict[str, Any] = field(default_factory=dict)
    # how the provider health-checks instances: {"path": "/health", "interval": 0.5,
    # "healthy_threshold": 2, "unhealthy_threshold": 3} (seconds; every key optional)
    health: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class InstanceStatus:
    id: str
    slot: str
    version: str
    # starting | ready | unhealthy | draining | stopped | crashed
    state: str
    ready_for: float = 0.0  # seconds it has been continuously ready (0 when not ready)
    address: str = ""
    restarts: int = 0
    reason: str = ""  # why it is not running, when the provider knows ("CrashLoopBackOff")


@dataclass(frozen=True)
class SlotStatus:
    name: str
    version: str | None
    desired: int
    instances: tuple[InstanceStatus, ...] = ()

    @property
    def ready(self) -> int:
        return sum(1 for i in self.instances if i.state == "ready")

    def available(self, min_ready: float) -> int:
        """Instances ready for at least ``min_ready`` seconds."""
        return sum(1 for i in self.instances if i.state == "ready" and i.ready_for >= min_ready)

    @property
    def failed(self) -> int:
        return sum(1 for i in self.instances if i.state in ("unhealthy", "crashed"))


@dataclass(frozen=True)
class Routing:
    """How the router picks a slot for each new request.

    ``weights``: slot -> 0..100 summing to 100, or None for "evenly over every ready instance".
    ``preview_slot``: a slot reachable on the preview endpoint whatever the weights (blue-green
    smoke tests and people looking at the idle side before the switch).
    ``header`` / ``cookie``: a request carrying it with value ``always`` goes to ``canary_slot``,
    ``never`` to ``stable_slot``, whatever the weights (dogfooding).
    ``sticky_key``: ``"header:X-User-Id"`` or ``"cookie:uid"``: requests with that key are placed by
    a consistent hash of it, so a user stays on the canary while its weight only grows.
    ``header_routes``: named routes (Argo Rollouts' ``setHeaderRoute``), each ``{"name", "match":
    [{"header": "X-Beta", "value": {"exact" | "prefix" | "regex": "..."}}]}``: a request matching
    every match of a route goes to ``canary_slot`` whatever the weights.
    ``mirror_routes``: named mirror routes (Argo's ``setMirrorRoute``), each ``{"name",
    "percentage", "match": [{"method", "path", "headers"}]}``: a copy of that share of the matching
    requests goes to ``canary_slot`` and its answer is dropped (``integrations.local.mirroring``).
    """

    weights: dict[str, int] | None = None
    preview_slot: str | None = None
    stable_slot: str | None = None
    canary_slot: str | None = None
    header: str | None = None
    cookie: str | None = None
    sticky_key: str | None = None
    header_routes: tuple[dict, ...] | None = None
    mirror_routes: tuple[dict, ...] | None = None


@dataclass(frozen=True)
class TargetStatus:
    endpoint: str  # where user traffic enters, e.g. http://127.0.0.1:9101
    slots: dict[str, SlotStatus]
    # slot -> weight (0..100); None means "even across every ready instance of every slot"
    weights: dict[str, int] | None
    preview_endpoint: str | None = None  # where the preview slot answers, if one is set
    routing: Routing | None = None


class Target(Protocol):
    """A service placed in an environment, as its provider sees it."""

    def ensure_slot(self, slot: str, release: ReleaseRef, replicas: int) -> None:
        """Make ``slot`` run ``release`` with ``replicas`` instances (draining any removed)."""

    def set_weights(self, weights: dict[str, int] | None) -> None:
        """Route new requests by slot weight (summing to 100), or evenly when ``None``; keeps the
        rest of the routing (preview, header/cookie/sticky rules) as it is."""

    def set_routing(self, routing: Routing) -> None:
        """Replace the whole routing (weights, preview slot, header/cookie/sticky rules)."""

    def status(self) -> TargetStatus: ...

    def remove_slot(self, slot: str) -> None:
        """Drain and stop every instance of ``slot``."""


@dataclass(frozen=True)
class Arm:
    """One side of a comparison: the slot and the release version running there (None: any)."""

    slot: str
    version: str | None = None


@dataclass(frozen=True)
class MetricQuery:
    """What to read for one analysis metric, for both arms.

    ``mode``: ``counts`` (requests and errors: the error-rate test), ``range`` (a series of values
    over the window, one per ``step`` seconds) or ``instant`` (the value(s) at the window's end).
    ``query`` is provider specific (a name the local fleet knows, or a PromQL template);
    ``values`` holds what its ``{{...}}`` placeholders may use besides the per-arm ``slot``,
    ``version``, ``window`` and ``interval``: ``target``, ``service``, ``environment`` and
    ``args.NAME`` for each template argument.
    """

    query: str
    baseline: Arm
    canary: Arm
    mode: str = "instant"
    target: str = ""
    total_query: str | None = None
    values: dict[str, str] = field(default_factory=dict)
    step: float = 10.0


class MetricsSource(Protocol):
    """Samples of one metric for the baseline (stable) and canary arms over the SAME window.

    Windows are cumulative: from the moment ``begin`` was called to ``end``. ``begin`` returns a
    JSON-serialisable cursor that the caller stores and hands back (the local fleet's counters
    can only be read now, so the cursor is a reading; Prometheus keeps history and returns {}).

    ``fetch`` returns ``{"baseline": series, "canary": series}``, each series a plain dict:
    ``{"values": [...], "weights": [...] | absent, "total": requests, "errors": errors,
    "sum": exact sum of the values, "buckets": [[upper bound, count], ...] (non-cumulative, the
    last bound "+Inf")}`` with only the keys the source knows. No data is an empty series, not
    an error. Failures raise ``IntegrationError`` (permanent when retrying cannot help: a bad
    query, a refused token).
    """

    def begin(self, query: MetricQuery) -> dict[str, Any]: ...

    def fetch(
        self, query: MetricQuery, cursor: dict[str, Any], start: float, end: float
    ) -> dict[str, dict[str, Any]]: ...


class Notifier(Protocol):
    def send(self, event: dict[str, Any]) -> None: ...
