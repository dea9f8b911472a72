"""Flags test data, built through ``flags.actions`` (the product's own way in)."""

from __future__ import annotations

import pytest

from flags import actions, sdk
from flags.models import Flag
from tests import factories
from tests.flags import generated


@pytest.fixture
def actor(admin):
    return factories.api_actor(admin)


@pytest.fixture
def sdk_token(actor, prod):
    return sdk.create_token(actor, prod, "tests")[1]


def load_generated(actor, environment, seed=14, features=40) -> dict:
    """The generated payload's flags and segments, created through the actions; returns the
    payload as served (strategy variants lose their overrides, which Unleash ignores anyway)."""
    payload = generated.payload(seed=seed, features=features)
    ids = {}
    for s in payload["segments"]:
        ids[s["id"]] = actions.save_segment(actor, s["name"], s["constraints"]).pk
    for f in payload["features"]:
        flag = actions.create_flag(actor, f["name"])
        for s in f["strategies"]:
            s["segments"] = [ids[i] for i in s["segments"]]
            for v in s["variants"]:
                v.pop("overrides", None)
        actions.set_strategies(actor, flag, environment, f["strategies"])
        actions.set_variants(actor, flag, environment, f["variants"])
        actions.set_enabled(actor, flag, environment, f["enabled"])
    return payload


def make_flag(
    actor, environment, key="checkout", *, enabled=True, strategies=None, variants=None, **fields
) -> Flag:
    flag = actions.create_flag(actor, key, **fields)
    if strategies is not None:
        actions.set_strategies(actor, flag, environment, strategies)
    if variants is not None:
        actions.set_variants(actor, flag, environment, variants)
    actions.set_enabled(actor, flag, environment, enabled)
    return flag


def url_of(live_server) -> str:
    """The live server by address: ``localhost`` makes clients try IPv6 first, in vain."""
    return live_server.url.replace("localhost", "127.0.0.1")
