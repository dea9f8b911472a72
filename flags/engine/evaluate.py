"""Evaluate a feature for a context, with Unleash's semantics.

The input is the client-API payload itself (``{"features": [...], "segments": [...]}``), the
very document Unleash SDKs download, so the server's answer and an SDK's can only differ if
the evaluation differs -- which ``tests/flags`` checks against Unleash's engine.

- A feature is on when it is enabled in the environment and it has no strategies or any
  strategy is on; a strategy is on when its rule holds and all its constraints, and those of
  its segments, hold (a missing segment turns the strategy off).
- ``flexibleRollout``: on for ``normalized_hash(groupId, stickiness value) <= rollout``;
  stickiness ``default`` is userId, then sessionId, then random; another name reads that field
  or custom property, and a context without it is off.
- Variants: the first strategy that is on decides; its own variants if it has some (sticky on
  its ``stickiness`` and ``groupId``), else the feature's (overrides first, then sticky on the
  first variant's stickiness, grouped by the feature name); the bucket is
  ``normalized_hash(group, value, total weight, VARIANT_SEED)`` over the cumulative weights.
"""

from __future__ import annotations

import ipaddress
import random
from dataclasses import dataclass, field

from flags.engine.constraints import context_value, matches
from flags.engine.hashing import VARIANT_SEED, normalized_hash

DISABLED_VARIANT = {"name": "disabled", "enabled": False}
STRATEGIES = ("default", "userWithId", "flexibleRollout", "remoteAddress")
NAMED_FIELDS = ("userId", "sessionId", "environment", "appName", "remoteAddress")


class Reason:
    """Why a value was chosen (OpenFeature's reasons)."""

    STATIC = "STATIC"  # on, with no strategies: the same for everyone
    TARGETING_MATCH = "TARGETING_MATCH"  # a strategy (or a variant override) chose this context
    SPLIT = "SPLIT"  # a variant by weighted, sticky split
    DEFAULT = "DEFAULT"  # on, but no strategy matched: the default
    DISABLED = "DISABLED"  # off in this environment (or killed)


@dataclass(frozen=True)
class Result:
    enabled: bool
    variant: dict = field(default_factory=lambda: dict(DISABLED_VARIANT))
    reason: str = Reason.DEFAULT

    @property
    def variant_name(self) -> str:
        return self.variant["name"]


@dataclass
class Compiled:
    """A payload made ready to evaluate many times (features by name, segments by id)."""

    features: dict
    segments: dict

    def names(self) -> list[str]:
        return list(self.features)


def compile_features(payload: dict) -> Compiled:
    segments = {s["id"]: list(s.get("constraints") or []) for s in payload.get("segments") or []}
    features = {f["name"]: f for f in payload.get("features") or []}
    return Compiled(features=features, segments=segments)


# --- strategies -------------------------------------------------------------------------------


def _percentage(params: dict, name: str) -> int | None:
    raw = str(params.get(name, ""))
    return int(raw) if raw.isdigit() else None


def _stickiness_value(stickiness: str | None, context: dict) -> str | None:
    if stickiness in (None, "default"):
        for name in ("userId", "sessionId"):
            if context.get(name) is not None:
                return context[name]
        return str(random.randint(1, 99))
    if stickiness == "random":
        return str(random.randint(1, 99))
    return context_value(context, stickiness)


def _rule_on(strategy: dict, feature_name: str, context: dict) -> bool:
    kind = strategy.get("name")
    params = strategy.get("parameters") or {}
    if kind == "default":
        return True
    if kind == "userWithId":
        ids = params.get("userIds")
        if ids is None:
            return False
        return context.get("userId") in {i.strip() for i in ids.split(",")}
    if kind == "flexibleRollout":
        rollout = _percentage(params, "rollout")
        if rollout is None:
            return False
        value = _stickiness_value(params.get("stickiness"), context)
        if value is None:
            return False
        group = params.get("groupId", feature_name)
        return normalized_hash(group, value, 100) <= rollout
    if kind == "remoteAddress":
        address = context.get("remoteAddress")
        if params.get("IPs") is None or address is None:
            return False
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        for item in params["IPs"].split(","):
            try:
                if ip in ipaddress.ip_network(item.strip(), strict=False):
                    return True
            except ValueError:
                continue
        return False
    return False  # custom strategies are not served by Switchyard


def strategy_on(strategy: dict, feature_name: str, context: dict, segments: dict) -> bool:
    constraints = list(strategy.get("constraints") or [])
    for segment_id in strategy.get("segments") or []:
        if segment_id not in segments:
            return False
        constraints.extend(segments[segment_id])
    return _rule_on(strategy, feature_name, context) and all(
        matches(c, context) for c in constraints
    )


# --- variants ---------------------------------------------------------------------------------


def _override_value(name: str, context: dict):
    if name in NAMED_FIELDS or name == "currentTime":
        return context.get(name)
    return (context.get("properties") or {}).get(name)


def _seed(stickiness: str | None, context: dict) -> str | None:
    if stickiness in (None, "default"):
        user = context.get("userId")
        return user if user is not None else context.get("sessionId")
    if stickiness in NAMED_FIELDS:
        return context.get(stickiness)
    return (context.get("properties") or {}).get(stickiness)


def pick_variant(
    variants: list, group: str, context: dict, stickiness: str | None, overrides: bool = True
):
    """``(variant, reason)`` from ``variants``, or ``(None, None)`` when there are none. A
    strategy's variants have no overrides (``overrides=False``), as in Unleash."""
    if not variants:
        return None, None
    for variant in variants if overrides else ():
        for override in variant.get("overrides") or ():
            value = _override_value(override.get("contextName", ""), context)
            if value is not None and value in (override.get("values") or ()):
                return variant, Reason.TARGETING_MATCH
    total = sum(int(v.get("weight", 0)) for v in variants)
    if total <= 0:
        return None, None
    seed = _seed(stickiness, context)
    if seed is None:
        target = random.randrange(total)
    else:
        target = normalized_hash(group, seed, total, VARIANT_SEED)
    cumulative = 0
    for variant in variants:
        cumulative += int(variant.get("weight", 0))
        if cumulative >= target:
            return variant, Reason.SPLIT
    return None, None


def _public(variant: dict) -> dict:
    out = {"name": variant["name"], "enabled": True}
    if variant.get("payload") is not None:
        out["payload"] = variant["payload"]
    return out


# --- the whole feature ------------------------------------------------------------------------


def evaluate(compiled: Compiled, name: str, context: dict) -> Result | None:
    """The feature ``name`` for ``context``; None when there is no such feature."""
    feature = compiled.features.get(name)
    if feature is None:
        return None
    if not feature.get("enabled"):
        return Result(False, reason=Reason.DISABLED)
    strategies = feature.get("strategies") or []
    decided = None
    if strategies:
        decided = next(
            (s for s in strategies if strategy_on(s, name, context, compiled.segments)), None
        )
        if decided is None:
            return Result(False, reason=Reason.DEFAULT)
    reason = Reason.TARGETING_MATCH if strategies else Reason.STATIC
    own = (decided or {}).get("variants") or []
    if own:
        params = decided.get("parameters") or {}
        variant, why = pick_variant(
            own,
            params.get("groupId", name),
            context,
            params.get("stickiness", "default"),
            overrides=False,
        )
    else:
        variants = feature.get("variants") or []
        stickiness = variants[0].get("stickiness") if variants else None
        variant, why = pick_variant(variants, name, context, stickiness)
    if variant is None:
        return Result(True, reason=reason)
    return Result(True, variant=_public(variant), reason=why)
