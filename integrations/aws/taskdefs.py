"""Task definition revisions: a release's image as a new revision derived from a service's
current one, and which release a revision runs.

The new revision copies everything ``RegisterTaskDefinition`` accepts from the current one (roles,
network mode, volumes, CPU and memory, every container) and changes only the release's container:
its ``image`` and a docker label ``switchyard.version`` naming the release. The label is how a
slot's version is read back; revisions are immutable, so that reading is cached by ARN.
"""

from __future__ import annotations

import threading
from typing import Any

from integrations.aws.errors import calling
from integrations.base import IntegrationError

VERSION_LABEL = "switchyard.version"
REGISTER_KEYS = (
    "family",
    "taskRoleArn",
    "executionRoleArn",
    "networkMode",
    "containerDefinitions",
    "volumes",
    "placementConstraints",
    "requiresCompatibilities",
    "cpu",
    "memory",
    "pidMode",
    "ipcMode",
    "proxyConfiguration",
    "inferenceAccelerators",
    "ephemeralStorage",
    "runtimePlatform",
)
_described: dict[str, dict[str, Any]] = {}  # ARN -> {"version", "image", "container", "tags"}
_lock = threading.Lock()


def describe(ecs, arn: str) -> dict[str, Any]:
    """The task definition and its tags (cached: a revision never changes)."""
    with calling("ecs", "DescribeTaskDefinition", f"task definition {arn}"):
        answer = ecs.describe_task_definition(taskDefinition=arn, include=["TAGS"])
    return answer


def summary(ecs, arn: str, container: str | None) -> dict[str, Any]:
    """``{"version": label or None, "image": the release container's image}`` of a revision."""
    with _lock:
        cached = _described.get(arn)
    if cached is None:
        answer = describe(ecs, arn)
        definition = answer["taskDefinition"]
        chosen = pick_container(definition, container, arn)
        cached = {
            "version": (chosen.get("dockerLabels") or {}).get(VERSION_LABEL),
            "image": chosen.get("image"),
        }
        with _lock:
            _described[arn] = cached
    return cached


def pick_container(definition: dict[str, Any], name: str | None, arn: str) -> dict[str, Any]:
    containers = definition.get("containerDefinitions") or []
    if not containers:
        raise IntegrationError(f"task definition {arn} has no containers", permanent=True)
    if name is None:
        return containers[0]
    for container in containers:
        if container.get("name") == name:
            return container
    names = ", ".join(c.get("name", "?") for c in containers)
    raise IntegrationError(
        f"task definition {arn} has no container {name!r} (it has {names}): fix the target's "
        "'container'",
        permanent=True,
    )


def derive(ecs, current_arn: str, *, image: str, version: str, container: str | None) -> str:
    """Register a revision of ``current_arn``'s family running ``image`` as ``version``; its ARN."""
    answer = describe(ecs, current_arn)
    definition = answer["taskDefinition"]
    chosen = pick_container(definition, container, current_arn)
    request = {key: definition[key] for key in REGISTER_KEYS if definition.get(key) is not None}
    request["containerDefinitions"] = [
        {
            **c,
            "image": image,
            "dockerLabels": {**(c.get("dockerLabels") or {}), VERSION_LABEL: version},
        }
        if c is chosen
        else c
        for c in definition["containerDefinitions"]
    ]
    if answer.get("tags"):
        request["tags"] = answer["tags"]
    with calling("ecs", "RegisterTaskDefinition", f"task definition family {definition['family']}"):
        registered = ecs.register_task_definition(**request)["taskDefinition"]
    arn = registered["taskDefinitionArn"]
    with _lock:
        _described[arn] = {"version": version, "image": image}
    return arn


def forget() -> None:
    """Forget what revisions run (tests, whose AWS is reset between them)."""
    with _lock:
        _described.clear()
