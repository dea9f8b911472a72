"""Request (``XIn``) and response (``XOut``) schemas of the REST API (see /api/v1/docs).

Inputs forbid unknown fields, so a typo is an error naming the field rather than a silent no-op.
Outputs mirror ``releases.live.presenters`` (which the WebSocket messages share) and allow extra
fields, so a field added there appears in the API without a second edit here.
"""

from __future__ import annotations

from typing import Any

from ninja import Field, Schema
from pydantic import ConfigDict, field_validator

from releases.api import strict
from releases.api.strategy_schema import StrategyShown, StrategySpec, StrategyToCheck

SLUG_PATTERN = r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$"
VERSION_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._+~-]*$"
MAX_INT = 2_147_483_647
MAX_WINDOW = 7 * 24 * 3600  # a week: a window longer than that is a second production
WINDOW_TEXT = (
    "seconds the previous release stays warm at 0% traffic after a rolling, canary or "
    "blue-green deployment succeeds (a rollback within them is a switch back); 0: off"
)
REASON_MAX = 2000
NOTES_MAX = 20_000


class In(Schema):
    """Unknown fields are errors; integers, numbers and booleans are strict
    (``releases.api.strict``)."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="before")
    @classmethod
    def _strict_json_types(cls, value, info):
        field = cls.model_fields.get(info.field_name)
        if field is not None:
            strict.check(value, field.annotation)
        return value


class Out(Schema):
    model_config = ConfigDict(extra="allow")


# --- errors -----------------------------------------------------------------------------------


class ErrorOut(Schema):
    code: str = Field(examples=["conflict"])
    message: str = Field(examples=["Cannot resume deployment 7: it is progressing."])
    details: dict[str, Any] = Field(
        default_factory=dict,
        description='For validation errors: {"errors": [{"path": ..., "message": ...}]}.',
    )


# --- services and environments ----------------------------------------------------------------


def _slug(**kw):
    return Field(
        pattern=SLUG_PATTERN,
        max_length=63,
        description="lowercase letters, digits and hyphens; 1-63 characters",
        **kw,
    )


class ServiceIn(In):
    slug: str = _slug(examples=["api"])
    name: str = Field("", max_length=200, description="defaults to the slug")
    repository: str = Field("", max_length=500)
    team: str = Field("", max_length=100)
    default_strategy: dict[str, Any] | None = Field(
        None, description="a strategy spec used when neither the deployment nor the target has one"
    )


class ServicePatchIn(In):
    name: str | None = Field(None, min_length=1, max_length=200)
    repository: str | None = Field(None, max_length=500)
    team: str | None = Field(None, max_length=100)
    default_strategy: dict[str, Any] | None = None


class ServiceOut(Out):
    slug: str
    name: str
    repository: str
    team: str
    default_strategy: StrategyShown | None
    created_at: str | None
    links: dict[str, str]


class EnvironmentIn(In):
    slug: str = _slug(examples=["prod"])
    name: str = Field("", max_length=200, description="defaults to the slug")
    order: int | None = Field(
        None, ge=0, le=MAX_INT, description="position on the promotion path; default: last"
    )
    default_strategy: dict[str, Any] | None = None
    rollback_window: int = Field(300, ge=0, le=MAX_WINDOW, description=WINDOW_TEXT)


class EnvironmentPatchIn(In):
    name: str | None = Field(None, min_length=1, max_length=200)
    order: int | None = Field(None, ge=0, le=MAX_INT)
    default_strategy: dict[str, Any] | None = None
    rollback_window: int | None = Field(None, ge=0, le=MAX_WINDOW, description=WINDOW_TEXT)


class EnvironmentOut(Out):
    slug: str
    name: str
    order: int
    default_strategy: StrategyShown | None
    rollback_window: int = Field(description=WINDOW_TEXT)
    created_at: str | None


class ServiceList(Schema):
    items: list[ServiceOut]


class EnvironmentList(Schema):
    items: list[EnvironmentOut]


# --- targets ----------------------------------------------------------------------------------


class TargetIn(In):
    provider: str = Field("local", max_length=32, examples=["local"])
    config: dict[str, Any] = Field(
        default_factory=dict, description="the provider's settings, e.g. local: router_port"
    )
    strategy: StrategySpec | None = Field(
        None, description="the default strategy spec for deployments to this target"
    )


class TargetOut(Out):
    service: str
    environment: str
    provider: str
    config: dict[str, Any]
    strategy: StrategyShown | None
    endpoint: str | None = Field(description="where user traffic enters, as last observed")
    stable_version: str | None
    stable_slot: str
    slots: dict[str, Any] = Field(
        description="per slot as last observed: version, desired, ready, weight, instances"
    )
    observed_at: str | None
    rollback_window: dict[str, Any] = Field(
        description="the rollback window: open, until, slot, version, instances held, seconds "
        "(the environment's), available (whether the provider can hold a warm slot), "
        "deployment, and a sentence saying what a rollback now does"
    )


class TargetList(Schema):
    items: list[TargetOut]


# --- releases ---------------------------------------------------------------------------------


class ReleaseIn(In):
    version: str = Field(
        min_length=1,
        max_length=128,
        pattern=VERSION_PATTERN,
        description="letters, digits and . _ + ~ -",
        examples=["1.4.2"],
    )
    artifact: dict[str, Any] = Field(
        default_factory=dict, examples=[{"sample": {}}, {"command": ["python", "-m", "app"]}]
    )
    commit: str = Field("", max_length=64)
    notes: str = Field("", max_length=NOTES_MAX)


class ReleaseOut(Out):
    service: str
    version: str
    artifact: dict[str, Any]
    commit: str
    notes: str
    created_by: str | None
    created_at: str | None


class ReleasePage(Schema):
    items: list[ReleaseOut]
    next: int | None = Field(description="pass as ?before= for the next (older) page")


# --- deployments ------------------------------------------------------------------------------


class DeploymentIn(In):
    service: str = Field(min_length=1, max_length=63, examples=["api"])
    environment: str = Field(min_length=1, max_length=63, examples=["prod"])
    version: str = Field(min_length=1, max_length=128, examples=["1.4.2"])
    strategy: StrategySpec | None = Field(
        None, description="default: the target's, else the service's, else the environment's"
    )
    reason: str = Field("", max_length=REASON_MAX)
    override_freeze: str | None = Field(
        None,
        max_length=REASON_MAX,
        description="admins only: deploy during a freeze window; why it cannot wait (audited, "
        "shown on the deployment)",
    )
    redeploy: bool = Field(
        False,
        description="deploy the version already live in the environment again (every instance "
        "is replaced); without it that is refused with 409 `already_live`",
    )


class StepOut(Schema):
    index: int
    description: str


class DeploymentOut(Out):
    id: int
    service: str
    environment: str
    state: str = Field(
        description="pending, awaiting_approval, progressing, paused, rolling_back, "
        "succeeded, failed, rolled_back, aborted or rejected"
    )
    active: bool
    strategy: StrategyShown
    step: StepOut
    weights: dict[str, Any] = Field(examples=[{"stable": 95, "canary": 5}])
    slots: dict[str, Any]
    stable_version: str | None
    target_version: str
    intent: str | None
    message: str
    failure_reason: str | None
    reason: str
    rollback_of: int | None
    pause: dict[str, Any] | None = Field(
        default=None, description="the pause the rollout is in: waiting for a person or a timer"
    )
    analysis: list[Any]
    created_by: str | None
    created_at: str | None
    started_at: str | None
    finished_at: str | None
    updated_at: str | None
    version: int
    links: dict[str, str]


class DeploymentPage(Schema):
    items: list[DeploymentOut]
    next: int | None = Field(description="pass as ?before= for the next (older) page")


class PromoteIn(In):
    full: bool = Field(False, description="skip the remaining steps and go straight to 100%")


class ReasonIn(In):
    reason: str = Field("", max_length=REASON_MAX)


class ApprovalIn(In):
    comment: str = Field("", max_length=REASON_MAX, description="why (shown and audited)")
    override_freeze: str | None = Field(
        None,
        max_length=REASON_MAX,
        description="approve: admins only, start the rollout during a freeze window; why",
    )


class EventOut(Out):
    id: int
    deployment: int
    kind: str
    message: str
    data: dict[str, Any]
    actor: str
    created_at: str | None


class EventPage(Schema):
    items: list[EventOut]
    next: int | None = Field(
        description="pass as ?after= for the next page; null when this page reached the end "
        "(poll again with the last item's id)"
    )


# --- strategies -------------------------------------------------------------------------------


class StrategyIn(In):
    strategy: StrategyToCheck = Field(
        description="our spec or Argo Rollouts' ({'canary': {...}} / {'blueGreen': {...}})",
        examples=[{"kind": "rolling", "replicas": 4, "batch_size": "25%"}],
    )
    provider: str | None = Field(
        None,
        max_length=32,
        description="also check that a target run by this provider can carry it out "
        "(its routing capabilities, integrations.registry)",
    )


class StrategyOut(Schema):
    strategy: StrategyShown = Field(description="the normalised spec, every default filled in")
    steps: list[str]
