"""The objects the provider writes, as plain dicts (pure: no API calls here).

A slot is a Deployment ``<name>-<slot>``; its pods carry the standard ``app.kubernetes.io/*``
labels and ours (``switchyard.dev/slot``, ``switchyard.dev/target``); the exact release version
is the annotation ``switchyard.dev/version`` (label values are too narrow for any version).
The selector (immutable on a Deployment) is the name and the slot only.

A release's artifact for this provider: ``{"image": "registry/api:1.4.2", "env": {"K": "V"},
"args": ["--flag"]}`` (only ``image`` is required); it replaces the image (and env/args) of the
target's container in the pod template the config names.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from integrations.base import IntegrationError, ReleaseRef

NAME = "app.kubernetes.io/name"
INSTANCE = "app.kubernetes.io/instance"
VERSION = "app.kubernetes.io/version"
MANAGED_BY = "app.kubernetes.io/managed-by"
SLOT = "switchyard.dev/slot"
TARGET = "switchyard.dev/target"
VERSION_ANNOTATION = "switchyard.dev/version"
ROUTING_ANNOTATION = "switchyard.dev/routing"
MANAGER = "switchyard"
NO_SLOT = "none"  # the preview Service's selector while no slot is previewed
_LABEL_VALUE = re.compile(r"[^A-Za-z0-9._-]")


def label_value(value: str) -> str:
    """``value`` as a valid label value (at most 63 of [A-Za-z0-9._-], alphanumeric ends)."""
    return _LABEL_VALUE.sub("-", value)[:63].strip("-._") or "unknown"


def base_selector(name: str) -> dict[str, str]:
    """Every pod of every slot of the target (what "evenly over every ready instance" reaches)."""
    return {NAME: name, MANAGED_BY: MANAGER}


def slot_selector(name: str, slot: str) -> dict[str, str]:
    return {**base_selector(name), SLOT: slot}


def selector_string(labels: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def slot_name(name: str, slot: str) -> str:
    return f"{name}-{slot}"


def slot_labels(name: str, slot: str, key: str, version: str) -> dict[str, str]:
    return {
        **slot_selector(name, slot),
        INSTANCE: slot_name(name, slot),
        VERSION: label_value(version),
        TARGET: label_value(key),
    }


def parse_artifact(artifact: dict[str, Any]) -> tuple[str, dict[str, str], list[str] | None]:
    image = artifact.get("image")
    if not isinstance(image, str) or not image.strip():
        raise IntegrationError(
            'the release\'s artifact needs an "image" for the kubernetes provider, e.g. '
            '{"image": "registry.example.com/api:1.4.2"}',
            permanent=True,
        )
    env = artifact.get("env") or {}
    args = artifact.get("args")
    if not isinstance(env, dict) or not all(isinstance(v, str) for v in env.values()):
        raise IntegrationError('artifact "env" must map names to strings', permanent=True)
    if args is not None and (
        not isinstance(args, list) or not all(isinstance(a, str) for a in args)
    ):
        raise IntegrationError('artifact "args" must be a list of strings', permanent=True)
    return image.strip(), env, args


def pod_template(
    base: dict[str, Any], container: str, release: ReleaseRef, labels: dict[str, str]
) -> dict[str, Any]:
    """``base`` (a pod template) running ``release`` in ``container``, labelled for its slot."""
    image, env, args = parse_artifact(release.artifact)
    template = copy.deepcopy(base)
    metadata = template.setdefault("metadata", {})
    for key in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp"):
        metadata.pop(key, None)
    metadata["labels"] = {**(metadata.get("labels") or {}), **labels}
    metadata["annotations"] = {
        **(metadata.get("annotations") or {}),
        VERSION_ANNOTATION: release.version,
    }
    containers = template.get("spec", {}).get("containers") or []
    target = next((c for c in containers if c.get("name") == container), None)
    if target is None:
        names = ", ".join(repr(c.get("name")) for c in containers) or "none"
        raise IntegrationError(
            f"the pod template has no container {container!r} (it has {names}): set the "
            'target\'s "container"',
            permanent=True,
        )
    target["image"] = image
    if args is not None:
        target["args"] = list(args)
    if env:
        kept = [e for e in target.get("env") or [] if e.get("name") not in env]
        target["env"] = kept + [{"name": k, "value": v} for k, v in sorted(env.items())]
    return template


def slot_deployment(
    *,
    name: str,
    slot: str,
    key: str,
    namespace: str,
    template: dict[str, Any],
    container: str,
    release: ReleaseRef,
    replicas: int,
    progress_deadline: int,
) -> dict[str, Any]:
    labels = slot_labels(name, slot, key, release.version)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": slot_name(name, slot),
            "namespace": namespace,
            "labels": labels,
            "annotations": {VERSION_ANNOTATION: release.version},
        },
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {NAME: name, SLOT: slot}},
            "progressDeadlineSeconds": progress_deadline,
            "template": pod_template(template, container, release, labels),
        },
    }


def service(
    *, name: str, namespace: str, selector: dict[str, str], port: int, target_port: int, owner: str
) -> dict[str, Any]:
    """A ClusterIP Service the provider owns (``owner``: the target's name)."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {NAME: owner, MANAGED_BY: MANAGER},
        },
        "spec": {
            "type": "ClusterIP",
            "selector": dict(selector),
            "ports": [{"name": "http", "port": port, "targetPort": target_port}],
        },
    }


def same(current: dict[str, Any] | None, wanted: dict[str, Any], *paths: tuple[str, ...]) -> bool:
    """Whether ``current`` already has ``wanted``'s value at every path (so no write is due)."""
    if current is None:
        return False
    for path in paths:
        a, b = current, wanted
        for part in path:
            a = (a or {}).get(part) if isinstance(a, dict) else None
            b = (b or {}).get(part) if isinstance(b, dict) else None
        if a != b:
            return False
    return True
