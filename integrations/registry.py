"""The one list of providers: which integration runs a target, what it needs and what it can do.

Each entry (:class:`Provider`) names, as dotted paths imported lazily (nothing heavy is imported
until a provider is used):

- ``target``: its ``Target`` class, built as ``cls(key, config, **options)``;
- ``validator``: ``(config) -> [(path, message)]``, every problem with a target's config;
- ``settings``: ``() -> dict``, the provider's own settings (URLs, tokens, kubeconfig paths),
  read from Django settings by the provider itself and passed to the target and its metrics as
  keyword options — credentials never enter a target's config or the database;
- ``metrics``: its ``MetricsSource`` class (``integrations.base``), built as
  ``cls(target=key, **options)``; the live charts read request counters through its
  ``read_counters`` classmethod when it has one;
- ``capabilities``: what its traffic routing can do (:class:`Capabilities`). A strategy that
  needs one the target's provider lacks is refused when the deployment is created or the spec
  validated, with a message naming it (``strategies.spec.required_capabilities``);
- ``capabilities_for`` (optional): ``(config) -> Capabilities`` when what a target can do
  depends on its config (the kubernetes provider's router); ``capabilities`` is then what some
  config can do, the answer when no target is known;
- ``describe`` (optional): ``(config) -> str``, where a target runs, for the board ("prod-eu ·
  shop/api · gateway-api").

To add a provider: write its package under ``integrations/`` (target, config validator, settings,
metrics), add one entry here, and that is all: the database's provider choices, the API's
validation and the capability checks follow. See docs/architecture.md.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from functools import cache
from importlib import import_module
from typing import Any

from integrations.base import IntegrationError, MetricsSource, Target


@dataclass(frozen=True)
class Capabilities:
    """What a provider's routing can do. Names are those ``required_capabilities`` returns."""

    weights: bool = False  # split new requests between slots by percentage
    switch: bool = False  # move all traffic from one slot to the other at once (implied by weights)
    preview: bool = False  # a preview endpoint that reaches one slot whatever the weights
    header_rules: bool = False  # send requests carrying a header to the canary (or the stable)
    header_routes: bool = False  # send requests whose header values match (exact/prefix/regex)
    cookie_rules: bool = False  # the same by cookie
    sticky: bool = False  # place users by a hash of a key, so a user stays on one side
    mirroring: bool = False  # copy requests to the canary without answering from it
    instance_health: bool = False  # report each instance's health (not only a slot's count)
    # run slots beside the two of a deployment, each with its own release, size and share of new
    # requests (Argo's experiment step: a fresh baseline and canary side by side)
    experiment_slots: bool = False
    # keep the previous release's slot running at 0% traffic after a deployment succeeded, so a
    # rollback is a switch back (the rollback window, docs/loop.md); not a strategy requirement:
    # without it a rollback of a succeeded deployment redeploys the old release
    warm_slot: bool = False

    def names(self) -> list[str]:
        return [f.name for f in fields(self) if getattr(self, f.name)]


CAPABILITY_TEXT = {
    "weights": "weighted traffic between slots",
    "switch": "switching all traffic between slots at once",
    "preview": "a preview endpoint",
    "header_rules": "header-based routing",
    "header_routes": "header routes matching values (Argo's setHeaderRoute)",
    "cookie_rules": "cookie-based routing",
    "sticky": "sticky users",
    "mirroring": "traffic mirroring",
    "instance_health": "per-instance health",
    "experiment_slots": "extra slots for an experiment step (a fresh baseline and canary)",
    "warm_slot": "keeping the previous release warm at 0% traffic (the rollback window)",
}


@dataclass(frozen=True)
class Provider:
    name: str
    label: str
    target: str
    validator: str
    settings: str | None = None
    metrics: str | None = None
    capabilities: Capabilities = Capabilities()
    capabilities_for: str | None = None
    describe: str | None = None


PROVIDERS: dict[str, Provider] = {
    "local": Provider(
        name="local",
        label="local fleet",
        target="integrations.local.target.LocalTarget",
        validator="integrations.local.config.validate_config",
        settings="integrations.local.config.settings_options",
        metrics="integrations.metrics.local.LocalMetrics",
        capabilities=Capabilities(
            weights=True,
            preview=True,
            header_rules=True,
            header_routes=True,
            cookie_rules=True,
            sticky=True,
            mirroring=True,
            instance_health=True,
            experiment_slots=True,
            warm_slot=True,
        ),
    ),
    # AWS (integrations.aws, docs/aws.md): weights through the ALB listener / Lambda alias /
    # Route 53 records; a preview through an ALB test listener; header and cookie rules (and
    # header routes, exact or prefix) as ALB listener rules; no sticky users
    "aws-ecs": Provider(
        name="aws-ecs",
        label="AWS ECS behind an ALB",
        target="integrations.aws.tasksets.ecs_target",  # a service per slot, or task sets
        validator="integrations.aws.config.validate_ecs",
        settings="integrations.aws.config.settings_options",
        metrics="integrations.metrics.cloudwatch.CloudWatchMetrics",
        capabilities=Capabilities(
            weights=True,
            preview=True,
            header_rules=True,
            header_routes=True,
            cookie_rules=True,
            warm_slot=True,
        ),
    ),
    "aws-lambda": Provider(
        name="aws-lambda",
        label="AWS Lambda alias",
        target="integrations.aws.lambdas.LambdaTarget",
        validator="integrations.aws.config.validate_lambda",
        settings="integrations.aws.config.settings_options",
        metrics="integrations.metrics.cloudwatch.CloudWatchMetrics",
        # the previous version stays published behind its slot alias: switching back is one
        # alias update
        capabilities=Capabilities(weights=True, warm_slot=True),
    ),
    "aws-route53": Provider(
        name="aws-route53",
        label="AWS Route 53 weighted records",
        target="integrations.aws.route53.Route53Target",
        validator="integrations.aws.config.validate_route53",
        settings="integrations.aws.config.settings_options",
        # live charts from each slot's own backend's ALB metrics, when its slot names one
        metrics="integrations.metrics.cloudwatch.CloudWatchMetrics",
        # no warm_slot: the slots are fixed endpoints Switchyard does not run, and resolvers cache
        # the records for their TTL, so a "switch back" would not be one; a rollback redeploys
        capabilities=Capabilities(weights=True),
    ),
    "kubernetes": Provider(
        name="kubernetes",
        label="Kubernetes",
        target="integrations.kubernetes.target.KubernetesTarget",
        validator="integrations.kubernetes.config.validate_config",
        settings="integrations.kubernetes.config.settings_options",
        metrics="integrations.kubernetes.metrics.KubernetesMetrics",
        # what some router can do; each target's router says what it can (capabilities_for)
        capabilities=Capabilities(
            weights=True,
            preview=True,
            header_rules=True,
            header_routes=True,
            cookie_rules=True,
            mirroring=True,
            instance_health=True,
            warm_slot=True,
        ),
        capabilities_for="integrations.kubernetes.config.capabilities_for",
        describe="integrations.kubernetes.config.describe",
    ),
}
DEFAULT_PROVIDER = "local"


def _load(path: str):
    module, _, name = path.rpartition(".")
    return getattr(import_module(module), name)


def preload() -> None:
    """Import every provider's target and validator now (a worker does so before it forks its
    pool, so no tick pays for importing a client library: ~2 s for ``kubernetes``, more on a
    busy machine, and a rollback's first tick would wait for it)."""
    for provider in PROVIDERS.values():
        for path in (provider.target, provider.validator):
            _load(path)


def provider_choices() -> list[tuple[str, str]]:
    """The database's choices for ``Target.provider`` (a callable, so adding a provider needs no
    migration)."""
    return [(p.name, p.label) for p in PROVIDERS.values()]


def get(name: str) -> Provider:
    provider = PROVIDERS.get(name)
    if provider is None:
        known = ", ".join(sorted(PROVIDERS))
        raise IntegrationError(f"unknown provider {name!r}: use one of {known}", permanent=True)
    return provider


def options(name: str) -> dict[str, Any]:
    """The provider's own settings, as keyword options for its target and metrics."""
    provider = get(name)
    return dict(_load(provider.settings)()) if provider.settings else {}


def validate_target_config(provider: str, config: dict) -> list[tuple[str, str]]:
    """Every problem with a target's config, as (path, message) pairs."""
    if provider not in PROVIDERS:
        known = ", ".join(sorted(PROVIDERS))
        return [("provider", f"unknown provider {provider!r}: use one of {known}")]
    if not isinstance(config, dict):
        return [("config", "must be an object")]
    return list(_load(PROVIDERS[provider].validator)(config))


def build_target(provider: str, key: str, config: dict, **extra: Any) -> Target:
    """The provider's Target for one target (``extra`` overrides its settings, for tests)."""
    return _load(get(provider).target)(key, config, **{**options(provider), **extra})


def metrics_class(provider: str):
    """The provider's MetricsSource class, or None when it has none."""
    path = get(provider).metrics
    return _load(path) if path else None


def build_metrics_source(provider: str, key: str, **extra: Any) -> MetricsSource | None:
    cls = metrics_class(provider)
    return None if cls is None else cls(target=key, **{**options(provider), **extra})


def read_counters(
    provider: str, keys: list[str], configs: dict[str, dict] | None = None
) -> dict[str, dict] | None:
    """Request counters of these targets for the live charts (``{key: reading}``, see
    ``releases.live.charts``), or None when the provider's metrics cannot give them.
    ``configs`` holds each target's config (where a cluster's Prometheus or a load balancer's
    CloudWatch metrics are found)."""
    cls = metrics_class(provider)
    reader = getattr(cls, "read_counters", None)
    if reader is None:
        return None
    return reader(keys, configs=configs or {}, **options(provider))


def capabilities(provider: str, config: dict | None = None) -> Capabilities:
    """What the provider's routing can do; with a target's ``config``, what that target's can."""
    entry = get(provider)
    if config is not None and entry.capabilities_for:
        return _load(entry.capabilities_for)(config)
    return entry.capabilities


def holds_warm_slot(provider: str, config: dict | None = None) -> bool:
    """Whether the provider (with ``config``: that target) can keep the previous release's slot
    warm at 0% traffic after a deployment succeeded (the rollback window)."""
    return provider in PROVIDERS and capabilities(provider, config).warm_slot


def describe(provider: str, config: dict | None) -> str:
    """Where a target runs, in a few words ("" when its provider does not say)."""
    entry = PROVIDERS.get(provider)
    if entry is None or not entry.describe:
        return ""
    return _load(entry.describe)(config or {})


@cache
def _known_capabilities() -> frozenset[str]:
    return frozenset(f.name for f in fields(Capabilities))


def missing_capabilities(
    provider: str, needed: set[str] | frozenset[str], config: dict | None = None
) -> list[str]:
    """Which of ``needed`` the provider (with ``config``: that target) lacks, sorted (unknown
    names count as lacking)."""
    have = set(capabilities(provider, config).names())
    if "weights" in have:
        have.add("switch")  # a router that splits by weight can send 100% to one slot
    return sorted(name for name in needed if name not in have or name not in _known_capabilities())


def describe_missing(provider: str, missing: list[str]) -> str:
    what = ", ".join(f"{name} ({CAPABILITY_TEXT.get(name, name)})" for name in missing)
    return f"the {get(provider).label} provider ({provider!r}) cannot do {what}"
