"""AWS failures as ``IntegrationError``, naming the action and the resource.

Permanent (trying again cannot help; the step fails with the message): refused permissions
(``AccessDenied``...), invalid requests (``ValidationError``, ``InvalidParameter...``), missing
resources (``ResourceNotFound``, ``ServiceNotFound``, ``TargetGroupNotFound``...), bad
credentials or configuration (no credentials, unknown profile, no region). Transient (the tick
retries): throttling, any 5xx, a conflicting update still in progress, connection failures and
timeouts. botocore's standard retry mode has already retried the transient ones a few times by
the time they arrive here.

    with calling("ecs", "UpdateService", "service api-green in cluster prod"):
        ecs.update_service(...)
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionError,
    NoCredentialsError,
    NoRegionError,
    ParamValidationError,
    PartialCredentialsError,
    ProfileNotFound,
    ReadTimeoutError,
)

from integrations.base import IntegrationError

THROTTLING = {
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "RequestThrottled",
    "RequestThrottledException",
    "SlowDown",
    "PriorRequestNotComplete",
    "ProvisionedThroughputExceededException",
}
# 4xx that clear up by themselves: an update of the same resource still in progress
BUSY = {"ResourceConflictException", "ResourceInUseException", "ConcurrentModification"}
DENIED = {
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "ExpiredToken",
    "ExpiredTokenException",
    "SignatureDoesNotMatch",
    "AuthFailure",
}
XML_MESSAGE = re.compile(r"<Message>(.*?)</Message>", re.S)
# IAM's action prefix where it is not the endpoint's
IAM_PREFIX = {"monitoring": "cloudwatch", "elasticloadbalancing": "elasticloadbalancing"}


def iam_action(service: str, action: str) -> str:
    return f"{IAM_PREFIX.get(service, service)}:{action}"


def translate(exc: Exception, service: str, action: str, resource: str) -> IntegrationError:
    what = f"AWS {iam_action(service, action)} on {resource}"
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code") or "Unknown")
        message = _plain(str(error.get("Message") or "").strip())
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        detail = f"{code}: {message}" if message else code
        if code in THROTTLING:
            return IntegrationError(f"{what} was throttled ({detail}); retrying", permanent=False)
        if status >= 500 or code in BUSY:
            return IntegrationError(f"{what} failed on AWS' side ({detail}); retrying")
        if code in DENIED or status == 403:
            return IntegrationError(
                f"{what} was refused ({detail}): grant {iam_action(service, action)} on it to "
                "the identity Switchyard uses (see docs/aws.md for the policy)",
                permanent=True,
            )
        if "NotFound" in code or code.startswith("NoSuch") or status == 404:
            return IntegrationError(
                f"{what} failed: it does not exist ({detail}); check the target's config",
                permanent=True,
            )
        return IntegrationError(f"{what} was rejected ({detail})", permanent=True)
    if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
        return IntegrationError(
            f"{what}: no AWS credentials found (environment, shared files, instance or task "
            "role); configure them for the worker, or name a profile",
            permanent=True,
        )
    if isinstance(exc, ProfileNotFound):
        return IntegrationError(f"{what}: {exc}; name an existing profile", permanent=True)
    if isinstance(exc, NoRegionError):
        return IntegrationError(f"{what}: no region: set the target's region", permanent=True)
    if isinstance(exc, ParamValidationError):
        return IntegrationError(f"{what} was not sent: {exc}", permanent=True)
    if isinstance(exc, (ConnectionError, ReadTimeoutError)):
        return IntegrationError(f"{what} did not answer ({type(exc).__name__}: {exc}); retrying")
    if isinstance(exc, BotoCoreError):
        return IntegrationError(f"{what} failed: {type(exc).__name__}: {exc}", permanent=False)
    if isinstance(exc, IntegrationError):
        return exc
    return IntegrationError(f"{what} failed: {type(exc).__name__}: {exc}", permanent=False)


def _plain(message: str) -> str:
    """The message of an XML error body some endpoints wrap in a JSON error's message."""
    if message.startswith("<"):
        found = XML_MESSAGE.search(message)
        return found.group(1) if found else message[:300]
    return message


@contextmanager
def calling(service: str, action: str, resource: str) -> Iterator[None]:
    """Run AWS calls, turning their failures into ``IntegrationError`` naming them."""
    try:
        yield
    except IntegrationError:
        raise
    except (ClientError, BotoCoreError) as exc:
        raise translate(exc, service, action, resource) from exc
