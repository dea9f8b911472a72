"""CodeDeploy's predefined deployment configurations as canary specs.

``{"codedeploy": "ECSCanary10Percent5Minutes"}`` (the ``CodeDeployDefault.`` prefix is optional;
any other key -- ``stable_replicas``, ``canary_replicas``, ``analysis`` -- is passed on to the
canary) becomes our canary with the same meaning: a canary configuration shifts 10% and waits,
then shifts the rest; a linear one adds 10% after every interval; all-at-once shifts 100%.

    ECSCanary10Percent5Minutes  -> [{"set_weight": 10}, {"pause": {"duration": "5m"}},
                                    {"set_weight": 100}]

The result is validated like any spec (``strategies.spec.normalise``), so errors read the same.
Pure: no Django, no integrations.
"""

from __future__ import annotations

import re
from typing import Any

from strategies.fields import FieldError

PREFIX = "CodeDeployDefault."
CANARY = re.compile(r"^(ECS|Lambda)Canary10Percent(\d+)Minutes$")
LINEAR = re.compile(r"^(ECS|Lambda)Linear10PercentEvery(\d+)Minutes?$")
NAMES = (
    "ECSCanary10Percent5Minutes",
    "ECSCanary10Percent15Minutes",
    "ECSLinear10PercentEvery1Minutes",
    "ECSLinear10PercentEvery3Minutes",
    "ECSAllAtOnce",
    "LambdaCanary10Percent5Minutes",
    "LambdaCanary10Percent10Minutes",
    "LambdaCanary10Percent15Minutes",
    "LambdaCanary10Percent30Minutes",
    "LambdaLinear10PercentEvery1Minute",
    "LambdaLinear10PercentEvery2Minutes",
    "LambdaLinear10PercentEvery3Minutes",
    "LambdaLinear10PercentEvery10Minutes",
    "LambdaAllAtOnce",
)


def is_codedeploy(raw: Any) -> bool:
    return isinstance(raw, dict) and "codedeploy" in raw and "kind" not in raw


def steps_for(name: str) -> list[dict[str, Any]] | None:
    """The canary steps of a predefined configuration, or None when it is not one."""
    name = name[len(PREFIX) :] if name.startswith(PREFIX) else name
    if name not in NAMES:
        return None
    if name.endswith("AllAtOnce"):
        return [{"set_weight": 100}]
    canary = CANARY.match(name)
    if canary:
        wait = {"pause": {"duration": f"{int(canary.group(2))}m"}}
        return [{"set_weight": 10}, wait, {"set_weight": 100}]
    linear = LINEAR.match(name)
    assert linear is not None  # every name in NAMES is one of the three shapes
    wait = {"pause": {"duration": f"{int(linear.group(2))}m"}}
    steps: list[dict[str, Any]] = []
    for weight in range(10, 100, 10):
        steps += [{"set_weight": weight}, dict(wait)]
    return [*steps, {"set_weight": 100}]


def translate(raw: dict[str, Any], errors: list[FieldError]) -> dict[str, Any] | None:
    """Our canary spec for ``{"codedeploy": NAME, ...}``; None (after recording why) if NAME is
    not one of CodeDeploy's predefined configurations."""
    name = raw.get("codedeploy")
    steps = steps_for(name) if isinstance(name, str) else None
    if steps is None:
        errors.append(
            FieldError(
                "codedeploy",
                f"unknown CodeDeploy configuration {name!r}: use one of {', '.join(NAMES)}",
            )
        )
        return None
    rest = {key: value for key, value in raw.items() if key != "codedeploy"}
    return {"kind": "canary", "steps": steps, **rest}
