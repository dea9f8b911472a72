"""CodeDeploy's predefined configurations accepted as strategies, translated to canary steps."""

from __future__ import annotations

import pytest

from strategies import codedeploy
from strategies.fields import FieldError
from strategies.spec import normalise


def steps(name):
    errors: list[FieldError] = []
    spec = codedeploy.translate({"codedeploy": name}, errors)
    assert errors == []
    return normalise(spec)["steps"]


def weights(spec_steps):
    return [s["set_weight"] for s in spec_steps if "set_weight" in s]


def test_a_canary_configuration_shifts_ten_percent_waits_then_shifts_the_rest():
    got = steps("ECSCanary10Percent5Minutes")
    assert weights(got) == [10, 100]
    assert (
        got[1]
        == normalise({"kind": "canary", "steps": [{"pause": {"duration": "5m"}}]})["steps"][0]
    )


def test_a_linear_configuration_adds_ten_percent_after_every_interval():
    got = steps("LambdaLinear10PercentEvery1Minute")
    assert weights(got) == [10, 20, 30, 40, 50, 60, 70, 80, 90, 100]
    assert len(got) == 19


def test_all_at_once_shifts_everything():
    assert weights(steps("CodeDeployDefault.ECSAllAtOnce")) == [100]


@pytest.mark.parametrize("name", codedeploy.NAMES)
def test_every_documented_name_is_a_valid_canary(name):
    assert weights(steps(name))[-1] == 100


def test_other_keys_are_passed_on_to_the_canary():
    errors: list[FieldError] = []
    spec = codedeploy.translate({"codedeploy": "ECSAllAtOnce", "stable_replicas": 3}, errors)
    assert normalise(spec)["stable_replicas"] == 3


def test_an_unknown_name_is_an_error_listing_the_known_ones():
    errors: list[FieldError] = []
    assert codedeploy.translate({"codedeploy": "ECSCanary50Percent5Minutes"}, errors) is None
    assert errors[0].path == "codedeploy"
    assert "ECSCanary10Percent5Minutes" in errors[0].message
