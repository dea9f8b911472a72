"""Target configs of the AWS providers, their validators, and the AWS settings.

Every AWS target config may name where and as whom to call (never a secret):
``region``, ``profile`` (a named profile of the worker's shared config), ``role_arn`` (a role to
assume through STS) and ``external_id``; unset, they come from the settings ``AWS_REGION``,
``AWS_PROFILE``, ``AWS_ROLE_ARN`` (and ``AWS_ENDPOINT_URL``, ``AWS_CONNECT_TIMEOUT``,
``AWS_READ_TIMEOUT``, ``AWS_MAX_ATTEMPTS``). The rest is per provider:

- ``aws-ecs``: ``cluster``, ``listener_arn`` (or ``rule_arn``: a listener rule's forward),
  ``slots`` (``{"blue": {"service": "api-blue", "target_group_arn": "arn:..."}, "green": ...}``),
  optional ``test_listener_arn`` (the blue-green preview), ``container`` (the one whose image a
  release sets, default: the task definition's first), ``endpoint`` / ``preview_endpoint``
  (URLs, default: the load balancer's DNS name and the listeners' ports); ``"mode":
  "task_sets"`` makes a slot a task set of one ``service`` (deployment controller ``EXTERNAL``)
  instead: its slots name only ``target_group_arn``, with optional ``task_definition`` (what a
  first release derives from when the service has no task set) and ``container_port``
  (``integrations.aws.tasksets``);
- ``aws-lambda``: ``function_name``, ``alias`` (default ``live``), optional ``endpoint``;
- ``aws-route53``: ``hosted_zone_id``, ``record_name``, ``record_type`` (default ``CNAME``),
  ``ttl`` (default 60), ``slots`` (``{"blue": {"value": "blue.example.com",
  "health_check_id": optional, "alb": optional {"load_balancer": "app/blue/50dc",
  "target_group": "targetgroup/blue/73e2"}}, ...}``: ``alb`` names the slot's own backend,
  whose ALB metrics feed the live charts).
"""

from __future__ import annotations

import re
from typing import Any

from integrations.aws.session import DEFAULT_REGION, AwsOptions

COMMON_KEYS = ("region", "profile", "role_arn", "external_id")
ECS_KEYS = COMMON_KEYS + (
    "cluster",
    "listener_arn",
    "rule_arn",
    "test_listener_arn",
    "slots",
    "container",
    "endpoint",
    "preview_endpoint",
    "header_rule_priority",
    "mode",
    "service",
    "task_definition",
    "container_port",
)
ECS_MODES = ("services", "task_sets")
LAMBDA_KEYS = COMMON_KEYS + ("function_name", "alias", "endpoint")
ROUTE53_KEYS = COMMON_KEYS + ("hosted_zone_id", "record_name", "record_type", "ttl", "slots")
ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+$")
LISTENER_ARN = re.compile(r"^arn:aws[a-z-]*:elasticloadbalancing:[a-z0-9-]+:\d{12}:listener/")
RULE_ARN = re.compile(r"^arn:aws[a-z-]*:elasticloadbalancing:[a-z0-9-]+:\d{12}:listener-rule/")
TG_ARN = re.compile(r"^arn:aws[a-z-]*:elasticloadbalancing:[a-z0-9-]+:\d{12}:targetgroup/")
ALB_NAME = re.compile(r"^app/[^/]+/[^/]+$")  # a load balancer as CloudWatch names it
TG_NAME = re.compile(r"^targetgroup/[^/]+/[^/]+$")
REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")
RECORD_TYPES = ("A", "AAAA", "CNAME")


def options_for(config: dict[str, Any], settings: dict[str, Any]) -> AwsOptions:
    """The target's config over the provider's settings, as client options."""

    def pick(key: str) -> Any:
        return config.get(key) or settings.get(key) or None

    return AwsOptions(
        region=pick("region") or DEFAULT_REGION,
        profile=pick("profile"),
        role_arn=pick("role_arn"),
        external_id=pick("external_id"),
        endpoint_url=settings.get("endpoint_url") or None,
        connect_timeout=float(settings.get("connect_timeout") or 3.0),
        read_timeout=float(settings.get("read_timeout") or 10.0),
        max_attempts=int(settings.get("max_attempts") or 3),
    )


def settings_options() -> dict[str, Any]:
    """The AWS providers' settings (see switchyard/settings.py)."""
    from django.conf import settings  # read when a target is built, never at import

    return {
        "region": settings.AWS_REGION,
        "profile": settings.AWS_PROFILE,
        "role_arn": settings.AWS_ROLE_ARN,
        "endpoint_url": settings.AWS_ENDPOINT_URL,
        "connect_timeout": settings.AWS_CONNECT_TIMEOUT,
        "read_timeout": settings.AWS_READ_TIMEOUT,
        "max_attempts": settings.AWS_MAX_ATTEMPTS,
    }


def _common(config: Any, known: tuple[str, ...]) -> list[tuple[str, str]]:
    if not isinstance(config, dict):
        return [("", f"must be an object, got {type(config).__name__}")]
    errors = [
        (str(key), f"unknown key {key!r} (known: {', '.join(known)})")
        for key in sorted(set(config) - set(known), key=str)
    ]
    for key in COMMON_KEYS + ("endpoint", "preview_endpoint", "container", "alias"):
        if key in config and not isinstance(config[key], str):
            errors.append((key, "must be a string"))
    region = config.get("region")
    if isinstance(region, str) and not REGION.match(region):
        errors.append(("region", f"{region!r} is not an AWS region name (like eu-west-1)"))
    role = config.get("role_arn")
    if isinstance(role, str) and not ROLE_ARN.match(role):
        errors.append(("role_arn", "must be an IAM role ARN (arn:aws:iam::123456789012:role/x)"))
    for key in ("endpoint", "preview_endpoint"):
        url = config.get(key)
        if isinstance(url, str) and not url.startswith(("http://", "https://")):
            errors.append((key, "must be an http:// or https:// URL"))
    return errors


def _required_str(config: dict, key: str) -> list[tuple[str, str]]:
    value = config.get(key)
    if not isinstance(value, str) or not value:
        return [(key, "is required (a non-empty string)")]
    return []


def _slots(
    config: dict, fields: dict[str, re.Pattern | None], optional: tuple[str, ...] = ()
) -> list[tuple[str, str]]:
    slots = config.get("slots")
    if not isinstance(slots, dict) or not slots:
        return [("slots", "is required: an object of slot name -> its resources")]
    errors: list[tuple[str, str]] = []
    for name, slot in slots.items():
        if not isinstance(slot, dict):
            errors.append((f"slots.{name}", "must be an object"))
            continue
        known = (*fields, *optional)
        for key in sorted(set(slot) - set(known), key=str):
            errors.append((f"slots.{name}.{key}", f"unknown key (known: {', '.join(known)})"))
        for key, pattern in fields.items():
            value = slot.get(key)
            if not isinstance(value, str) or not value:
                errors.append((f"slots.{name}.{key}", "is required (a non-empty string)"))
            elif pattern is not None and not pattern.match(value):
                errors.append((f"slots.{name}.{key}", "is not a target group ARN"))
    return errors


def validate_ecs(config: Any) -> list[tuple[str, str]]:
    errors = _common(config, ECS_KEYS)
    if errors and errors[0][0] == "":
        return errors
    errors += _required_str(config, "cluster")
    if not config.get("listener_arn") and not config.get("rule_arn"):
        errors.append(("listener_arn", "is required (or rule_arn, a listener rule's ARN)"))
    for key, pattern in (
        ("listener_arn", LISTENER_ARN),
        ("test_listener_arn", LISTENER_ARN),
        ("rule_arn", RULE_ARN),
    ):
        value = config.get(key)
        if value is not None and (not isinstance(value, str) or not pattern.match(value)):
            errors.append((key, f"is not an Application Load Balancer {key[:-4]} ARN"))
    mode = config.get("mode", "services")
    if mode not in ECS_MODES:
        errors.append(("mode", f"must be one of {', '.join(ECS_MODES)}"))
    if mode == "task_sets":
        # one service (deploymentController EXTERNAL); a slot is a task set in its target group
        errors += _required_str(config, "service")
        errors += _slots(config, {"target_group_arn": TG_ARN})
        for key in ("task_definition",):
            if key in config and (not isinstance(config[key], str) or not config[key]):
                errors.append((key, "must be a task definition ARN or family[:revision]"))
        port = config.get("container_port")
        if port is not None and (
            isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535
        ):
            errors.append(("container_port", "must be a port number, 1..65535"))
    else:
        for key in ("service", "task_definition", "container_port"):
            if key in config:
                errors.append((key, 'is only for "mode": "task_sets" (a slot names its service)'))
        errors += _slots(config, {"service": None, "target_group_arn": TG_ARN})
    priority = config.get("header_rule_priority")
    if priority is not None and (
        isinstance(priority, bool) or not isinstance(priority, int) or not 1 <= priority <= 49980
    ):
        errors.append(
            ("header_rule_priority", "must be a listener rule priority, 1..49980 (20 are used)")
        )
    return errors


def validate_lambda(config: Any) -> list[tuple[str, str]]:
    errors = _common(config, LAMBDA_KEYS)
    if errors and errors[0][0] == "":
        return errors
    return errors + _required_str(config, "function_name")


def validate_route53(config: Any) -> list[tuple[str, str]]:
    errors = _common(config, ROUTE53_KEYS)
    if errors and errors[0][0] == "":
        return errors
    errors += _required_str(config, "hosted_zone_id") + _required_str(config, "record_name")
    kind = config.get("record_type", "CNAME")
    if kind not in RECORD_TYPES:
        errors.append(("record_type", f"must be one of {', '.join(RECORD_TYPES)}"))
    ttl = config.get("ttl", 60)
    if not isinstance(ttl, int) or isinstance(ttl, bool) or not 0 <= ttl <= 172800:
        errors.append(("ttl", "must be a whole number of seconds, 0..172800"))
    errors += _slots(config, {"value": None}, optional=("health_check_id", "alb"))
    for name, slot in (
        (config.get("slots") or {}).items() if isinstance(config.get("slots"), dict) else ()
    ):
        alb = slot.get("alb") if isinstance(slot, dict) else None
        if alb is None:
            continue
        if (
            not isinstance(alb, dict)
            or set(alb) - {"load_balancer", "target_group"}
            or not ALB_NAME.match(str(alb.get("load_balancer", "")))
            or ("target_group" in alb and not TG_NAME.match(str(alb["target_group"])))
        ):
            errors.append(
                (
                    f"slots.{name}.alb",
                    'must be {"load_balancer": "app/<name>/<id>", "target_group": '
                    '"targetgroup/<name>/<id>" (optional)}: the slot backend\'s ALB metrics',
                )
            )
    return errors
