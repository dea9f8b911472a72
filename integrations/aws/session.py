"""boto3 clients with an explicit config, cached per process.

    ecs = client("ecs", AwsOptions(region="eu-west-1", profile="deploy",
                                   role_arn="arn:aws:iam::123456789012:role/deployer"))

Credentials are never stored: the default chain (environment, shared files, instance or task
role), a named profile, and optionally a role assumed through STS on top of either (its
temporary credentials are kept in memory until five minutes before they expire). Every client
has the region, standard retry mode and connect/read timeouts set explicitly, and counts its
calls (``calls()``: the figure "AWS calls per tick" in bench/).
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config

from integrations.aws.errors import translate

DEFAULT_REGION = "us-east-1"
SESSION_NAME = "switchyard"
REFRESH_MARGIN = 300.0  # assume the role again this many seconds before its credentials expire


@dataclass(frozen=True)
class AwsOptions:
    """Where and as whom to call AWS (names only: no secret ever appears here)."""

    region: str = DEFAULT_REGION
    profile: str | None = None
    role_arn: str | None = None
    external_id: str | None = None
    endpoint_url: str | None = None  # a moto server or another AWS-compatible endpoint
    connect_timeout: float = 3.0
    read_timeout: float = 10.0
    max_attempts: int = 3  # in all, the first included

    def botocore_config(self) -> Config:
        return Config(
            region_name=self.region,
            retries={"mode": "standard", "total_max_attempts": self.max_attempts},
            connect_timeout=self.connect_timeout,
            read_timeout=self.read_timeout,
            user_agent_extra="switchyard",
        )


_lock = threading.Lock()
_clients: dict[tuple, Any] = {}
_assumed: dict[tuple, tuple[dict[str, str], float]] = {}
_calls: Counter[str] = Counter()
_journals: list[list[tuple[str, dict[str, Any]]]] = []


def client(service: str, options: AwsOptions):
    """A cached boto3 client for ``service`` (clients are thread-safe; sessions are not, so they
    are only used here, under the lock)."""
    key = (os.getpid(), service, options)
    with _lock:
        cached = _clients.get(key)
        if cached is not None and not _expired(options):
            return cached
        made = _session(options).client(
            service, config=options.botocore_config(), endpoint_url=options.endpoint_url
        )
        made.meta.events.register("before-parameter-build", _count)
        _clients[key] = made
        return made


def calls() -> Counter[str]:
    """Calls made by this process' clients so far, by ``service:Operation``."""
    return Counter(_calls)


@contextmanager
def journal() -> Iterator[list[tuple[str, dict[str, Any]]]]:
    """Every call this process' clients make meanwhile, in order, as (``service:Operation``,
    its parameters): what tests and bench/ look at to count and order calls."""
    entries: list[tuple[str, dict[str, Any]]] = []
    _journals.append(entries)
    try:
        yield entries
    finally:
        _journals.remove(entries)


def _count(model, params=None, **_: Any) -> None:
    name = f"{model.service_model.endpoint_prefix}:{model.name}"
    _calls[name] += 1
    for entries in _journals:
        entries.append((name, dict(params or {})))


def _base_session(options: AwsOptions) -> boto3.Session:
    try:
        return boto3.Session(profile_name=options.profile, region_name=options.region)
    except Exception as exc:  # ProfileNotFound and friends: a config mistake, said plainly
        raise translate(exc, "sts", "AssumeRole", options.profile or "the default profile") from exc


def _session(options: AwsOptions) -> boto3.Session:
    base = _base_session(options)
    if not options.role_arn:
        return base
    credentials = _assume(base, options)
    return boto3.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        region_name=options.region,
    )


def _assume(base: boto3.Session, options: AwsOptions) -> dict[str, str]:
    key = (os.getpid(), options.profile, options.role_arn, options.external_id, options.region)
    cached = _assumed.get(key)
    if cached is not None and cached[1] - REFRESH_MARGIN > time.time():
        return cached[0]
    sts = base.client("sts", config=options.botocore_config(), endpoint_url=options.endpoint_url)
    sts.meta.events.register("before-parameter-build", _count)
    kwargs: dict[str, Any] = {"RoleArn": options.role_arn, "RoleSessionName": SESSION_NAME}
    if options.external_id:
        kwargs["ExternalId"] = options.external_id
    try:
        credentials = sts.assume_role(**kwargs)["Credentials"]
    except Exception as exc:
        raise translate(exc, "sts", "AssumeRole", options.role_arn) from exc
    _assumed[key] = (credentials, credentials["Expiration"].timestamp())
    return credentials


def _expired(options: AwsOptions) -> bool:
    """Whether the assumed role behind a cached client needs assuming again."""
    if not options.role_arn:
        return False
    key = (os.getpid(), options.profile, options.role_arn, options.external_id, options.region)
    cached = _assumed.get(key)
    return cached is None or cached[1] - REFRESH_MARGIN <= time.time()


def forget() -> None:
    """Drop every cached client and assumed role (tests; a rotated profile)."""
    with _lock:
        _clients.clear()
        _assumed.clear()
