"""Lambda aliases through the reconcile loop against a real moto_server process: releases
published as versions from S3, a canary and a linear shift on the alias' AdditionalVersionWeights,
an abort that leaves the stable version alone. (moto cannot invoke functions without Docker, so
no request runs: the alias' routing is what is checked.)"""

from __future__ import annotations

import pytest

from integrations.aws import session
from integrations.aws.config import settings_options
from integrations.aws.lambdas import LambdaTarget
from integrations.base import IntegrationError, ReleaseRef
from releases import actions
from releases.models import State
from releases.reconcile import tick
from tests import factories
from tests.integrations.aws.moto import make_lambda_world
from tests.ticks import tick_until


@pytest.fixture
def world(moto):
    return make_lambda_world(moto)


@pytest.fixture
def lambda_target(world, service, dev):
    return factories.make_target(service, dev, provider="aws-lambda", config=world.config())


def deploy(moto, world, target, version, strategy):
    factories.make_release(target.service, version, artifact=world.upload(moto, version))
    d, _ = actions.start_deployment(
        factories.api_actor(),
        service=target.service,
        environment=target.environment,
        version=version,
        strategy=strategy,
    )
    return d


def alias(moto, world):
    answer = moto.client("lambda").get_alias(FunctionName=world.function, Name="live")
    extra = (answer.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}
    return answer["FunctionVersion"], extra


def described(moto, world, version):
    config = moto.client("lambda").get_function_configuration(
        FunctionName=world.function, Qualifier=version
    )
    return config["Description"]


def live(moto, world, target, version="1.0.0"):
    d = deploy(moto, world, target, version, {"kind": "recreate", "replicas": 1})
    return tick_until(d, lambda d: d.state == State.SUCCEEDED, what="the first release")


def test_a_release_is_published_as_a_version_and_the_alias_points_at_it(moto, world, lambda_target):
    live(moto, world, lambda_target)
    primary, extra = alias(moto, world)
    assert described(moto, world, primary) == "switchyard 1.0.0"
    assert extra == {}


def test_a_linear_shift_moves_the_alias_weights_step_by_step(moto, world, lambda_target):
    live(moto, world, lambda_target)
    stable_version, _ = alias(moto, world)
    steps = []
    for weight in (10, 20, 30):
        steps += [{"set_weight": weight}, {"pause": {}}]
    spec = {"kind": "canary", "steps": [*steps, {"set_weight": 100}], "stable_replicas": 1}
    d = deploy(moto, world, lambda_target, "2.0.0", spec)
    seen = []
    for _ in range(3):
        d = tick_until(d, lambda d: d.state == State.PAUSED, what="a pause")
        seen.append(alias(moto, world))
        actions.promote(factories.api_actor(), d.pk)
    d = tick_until(d, lambda d: d.state == State.SUCCEEDED, what="success")
    new_version = alias(moto, world)[0]
    assert described(moto, world, new_version) == "switchyard 2.0.0"
    assert seen == [
        (stable_version, {new_version: 0.1}),
        (stable_version, {new_version: 0.2}),
        (stable_version, {new_version: 0.3}),
    ]
    assert alias(moto, world) == (new_version, {})


def test_an_abort_sets_the_alias_back_to_the_stable_version_alone(moto, world, lambda_target):
    live(moto, world, lambda_target)
    stable_version, _ = alias(moto, world)
    spec = {"kind": "canary", "steps": [{"set_weight": 25}, {"pause": {}}], "stable_replicas": 1}
    d = deploy(moto, world, lambda_target, "2.0.0", spec)
    d = tick_until(d, lambda d: d.state == State.PAUSED, what="the pause")
    assert alias(moto, world)[1] != {}
    actions.abort(factories.api_actor(), d.pk, reason="errors")
    with session.journal() as calls:
        tick.tick(d.pk)
    first = next(params for name, params in calls if name == "lambda:UpdateAlias")
    assert (first["Name"], first["FunctionVersion"]) == ("live", stable_version)
    assert first["RoutingConfig"] == {"AdditionalVersionWeights": {}}
    d = tick_until(d, lambda d: d.state == State.ABORTED, what="aborted")
    assert alias(moto, world) == (stable_version, {})


def test_publishing_the_same_release_twice_reuses_its_version(moto, world):
    target = LambdaTarget("thumbs.dev", world.config(), **settings_options())
    release = ReleaseRef("3.0.0", world.upload(moto, "3.0.0"))
    target.ensure_slot("green", release, 1)
    target.remove_slot("green")
    target.ensure_slot("green", release, 1)
    versions = moto.client("lambda").list_versions_by_function(FunctionName=world.function)
    published = [v for v in versions["Versions"] if v["Version"] != "$LATEST"]
    assert len(published) == 1
    assert target.status().slots["green"].ready == 1


def test_a_missing_function_is_a_permanent_error_naming_it(moto, world):
    target = LambdaTarget("x.dev", world.config(function_name="nope"), **settings_options())
    with pytest.raises(IntegrationError) as caught:
        target.status()
    assert caught.value.permanent
    assert "lambda:ListAliases on function nope" in caught.value.message
