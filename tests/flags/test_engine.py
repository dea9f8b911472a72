"""The pure evaluation engine: Unleash's hashing and semantics, checked against known values and
against Unleash's own engine (Yggdrasil, the Rust core the ``UnleashClient`` package runs)."""

from __future__ import annotations

import json

import pytest
from yggdrasil_engine.engine import UnleashEngine

from flags.engine import compile_features, evaluate, normalized_hash
from flags.engine.constraints import matches, problems
from tests.flags import generated


def feature(name="checkout", enabled=True, strategies=(), variants=()):
    return {
        "name": name,
        "enabled": enabled,
        "strategies": list(strategies),
        "variants": list(variants),
    }


def rollout(percent, stickiness="default", group="checkout", **extra):
    params = {"rollout": str(percent), "stickiness": stickiness, "groupId": group}
    return {"name": "flexibleRollout", "parameters": params, "constraints": [], **extra}


def test_the_normalised_hash_matches_unleash_published_values():
    # values from Unleash's client specification (a user lands in the same bucket everywhere)
    assert normalized_hash("gr1", "123") == 73
    assert normalized_hash("groupX", "999") == 25
    assert normalized_hash("gr1", "123", 1000, 86028157) != normalized_hash("gr1", "123", 1000)


def test_it_rolls_out_to_the_users_whose_bucket_is_within_the_percentage():
    compiled = compile_features({"features": [feature(strategies=[rollout(30)])]})
    users = [f"user-{i}" for i in range(2000)]
    on = [u for u in users if evaluate(compiled, "checkout", {"userId": u}).enabled]
    assert on == [u for u in users if normalized_hash("checkout", u) <= 30]
    assert 500 < len(on) < 700


def test_a_rollout_is_sticky_on_the_custom_field_and_off_without_it():
    compiled = compile_features({"features": [feature(strategies=[rollout(100, "tenant")])]})
    assert evaluate(compiled, "checkout", {"properties": {"tenant": "t1"}}).enabled
    assert not evaluate(compiled, "checkout", {"userId": "u1"}).enabled


def test_a_disabled_feature_is_off_for_everyone_whatever_its_strategies():
    compiled = compile_features({"features": [feature(enabled=False)]})
    result = evaluate(compiled, "checkout", {"userId": "u1"})
    assert (result.enabled, result.reason, result.variant_name) == (False, "DISABLED", "disabled")
    assert evaluate(compiled, "nope", {}) is None


def test_weighted_variants_split_users_by_the_variant_seed():
    variants = [
        {"name": "a", "weight": 200, "stickiness": "default"},
        {"name": "b", "weight": 800, "stickiness": "default"},
    ]
    compiled = compile_features({"features": [feature(variants=variants)]})
    for i in range(500):
        bucket = normalized_hash("checkout", f"u{i}", 1000, 86028157)
        got = evaluate(compiled, "checkout", {"userId": f"u{i}"})
        assert got.variant_name == ("a" if bucket <= 200 else "b")
        assert got.reason == "SPLIT"


@pytest.mark.parametrize(
    ("constraint", "context", "expected"),
    [
        ({"operator": "IN", "values": ["gold"]}, {"plan": "gold"}, True),
        ({"operator": "IN", "values": ["gold"], "caseInsensitive": True}, {"plan": "Gold"}, False),
        ({"operator": "NOT_IN", "values": ["gold"]}, {}, True),
        ({"operator": "NOT_IN", "values": ["gold"], "inverted": True}, {}, False),
        (
            {"operator": "STR_ENDS_WITH", "values": ["LD"], "caseInsensitive": True},
            {"plan": "gold"},
            True,
        ),
        ({"operator": "STR_STARTS_WITH", "values": ["go"]}, {}, False),
        ({"operator": "STR_CONTAINS", "values": ["ol"], "inverted": True}, {}, True),
        ({"operator": "NUM_GT", "value": "3"}, {"plan": "3.5"}, True),
        ({"operator": "NUM_EQ", "value": "3"}, {"plan": "3.0"}, True),
        ({"operator": "NUM_LT", "value": "3"}, {"plan": "two"}, False),
        (
            {"operator": "DATE_AFTER", "value": "2026-01-01T00:00:00Z"},
            {"plan": "2026-01-01T01:00:00+00:00"},
            True,
        ),
        ({"operator": "SEMVER_GT", "value": "2.0.0-beta.1"}, {"plan": "2.0.0"}, True),
        ({"operator": "SEMVER_LT", "value": "1.10.0"}, {"plan": "1.9.3"}, True),
        ({"operator": "SEMVER_EQ", "value": "1.2.3"}, {"plan": "1.2"}, False),
    ],
)
def test_constraint_operators_follow_unleash(constraint, context, expected):
    c = {"contextName": "plan", "values": [], **constraint}
    assert matches(c, {"properties": context}) is expected


def test_it_refuses_constraints_an_sdk_could_not_compile():
    assert problems({"contextName": "plan", "operator": "IN", "values": ["a"]}) == []
    found = dict(problems({"contextName": "v", "operator": "SEMVER_GT", "value": "v1.2.3"}))
    assert "semantic version" in found["value"]
    assert problems({"contextName": "n", "operator": "NUM_GT", "value": "1e3"})
    assert problems({"contextName": "n", "operator": "LIKE", "values": []})[0][0] == "operator"


def test_it_agrees_with_unleash_engine_on_thousands_of_generated_contexts():
    """80,000 evaluations (40 generated flags x 2,000 contexts) through Unleash's own engine."""
    payload = generated.payload()
    theirs = UnleashEngine()
    assert theirs.take_state(json.dumps(payload)) is None
    mine = compile_features(payload)
    disagreements = []
    for context in generated.contexts():
        for name in mine.names():
            got = evaluate(mine, name, context)
            their_variant = theirs.check_variant(name, context).variant
            expected = (theirs.check_enabled(name, context).is_enabled, their_variant.name)
            if (got.enabled, got.variant_name) != expected:
                disagreements.append((name, context, got, expected))
            elif their_variant.payload:
                assert got.variant["payload"] == their_variant.payload
    assert disagreements == []
