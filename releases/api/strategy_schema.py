"""The strategy spec as the OpenAPI document types it: one schema per kind (a union discriminated by
``kind``), beside Argo Rollouts' spellings and CodeDeploy's configuration names.

These models only *describe*: a field typed ``StrategySpec`` checks only that it holds a JSON
object (``PlainValidator``, whose input type is what the document shows) and the value reaches
``strategies.spec`` as sent, so that every error keeps
the API's ``invalid_spec`` shape with its path (../shared/API.md), and a default or a new key
is checked in one place. Keep them in step with ``strategies/spec*.py``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    PlainValidator,
)
from pydantic_core import core_schema

Duration = Annotated[
    str | float, Field(description='a duration: "30s", "5m", "1h30m", or seconds as a number')
]
CountOrShare = Annotated[
    int | str, Field(description='a number of instances, or a share of them such as "25%"')
]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid")  # unknown keys are errors naming the key


class StrategyHealth(_Spec):
    path: str = Field("/health", description="the path each instance answers when healthy")
    interval: Duration = "500ms"
    healthy_threshold: int = Field(2, ge=1)
    unhealthy_threshold: int = Field(3, ge=1)


class StrategyAnalysisRef(_Spec):
    template: str = Field(description="an analysis template's name (/api/v1/analysis-templates)")
    args: dict[str, Any] | None = Field(None, description="values for the template's arguments")


class StrategyBackgroundAnalysis(StrategyAnalysisRef):
    start_at_step: int | None = Field(None, ge=0, description="the step it starts at (0-based)")


class StepPauseBody(_Spec):
    duration: Duration | None = Field(None, description="none: until someone presses Promote")


class StepCanaryScale(_Spec):
    replicas: int | None = Field(None, ge=0)
    weight: int | None = Field(None, ge=0, le=100)
    match_traffic_weight: bool | None = None


class StepSetWeight(_Spec):
    set_weight: int = Field(ge=0, le=100, description="the share of requests the canary gets, %")


class StepPause(_Spec):
    pause: StepPauseBody


class StepSetCanaryScale(_Spec):
    set_canary_scale: StepCanaryScale


class StepAnalysis(_Spec):
    analysis: StrategyAnalysisRef


class StepSetHeaderRoute(_Spec):
    set_header_route: dict[str, Any] = Field(description="route requests matching headers")


class StepSetMirrorRoute(_Spec):
    set_mirror_route: dict[str, Any] = Field(description="copy matching requests to the canary")


class ExperimentTemplate(_Spec):
    name: str = Field(description="names the slot: lower-case letters, digits and '-'")
    spec_ref: Literal["stable", "canary"] = Field(
        description="the release it runs: stable (the old one) or canary (the new one)"
    )
    replicas: int = Field(1, ge=1)
    weight: int | None = Field(
        None, ge=0, le=100, description="its share of requests, %, taken from the old release's"
    )


class ExperimentAnalysis(StrategyAnalysisRef):
    name: str
    required_for_completion: bool = Field(
        False, description="the step ends only once this analysis has passed"
    )


class StepExperimentBody(_Spec):
    duration: Duration | None = Field(
        None, description="from when every slot is available; none: until promoted"
    )
    templates: list[ExperimentTemplate] = Field(min_length=1)
    analyses: list[ExperimentAnalysis] | None = None


class StepExperiment(_Spec):
    experiment: StepExperimentBody = Field(
        description="a fresh baseline and canary side by side, measured, then torn down"
    )


CanaryStep = (
    StepSetWeight
    | StepPause
    | StepSetCanaryScale
    | StepAnalysis
    | StepSetHeaderRoute
    | StepSetMirrorRoute
    | StepExperiment
)


class CanaryRoute(_Spec):
    header: str | None = Field(None, description="requests with this header go to the canary")
    cookie: str | None = Field(None, description="requests with this cookie go to the canary")
    sticky_key: str | None = Field(None, description='"header:NAME" or "cookie:NAME"')


class CanaryStrategy(_Spec):
    """A share of the requests on the new release, step by step."""

    kind: Literal["canary"]
    steps: list[CanaryStep] = Field(min_length=1)
    stable_replicas: int | None = Field(None, ge=1)
    canary_replicas: Literal["match_weight"] | int = "match_weight"
    route: CanaryRoute | None = None
    analysis: StrategyBackgroundAnalysis | None = None
    min_ready: Duration = 0
    progress_deadline: Duration | None = None
    health: StrategyHealth | None = None


class SmokeCheck(_Spec):
    path: str
    status: int = 200


class BlueGreenStrategy(_Spec):
    """The idle side deployed and checked on a preview, then one switch."""

    kind: Literal["blue_green"]
    replicas: int | None = Field(None, ge=1)
    preview_replicas: int | None = Field(None, ge=1)
    smoke: list[SmokeCheck] | None = None
    auto_promote: Duration | None = Field(None, description="none: wait for Promote")
    scale_down_delay: Duration | None = None
    pre_promotion_analysis: StrategyAnalysisRef | None = None
    post_promotion_analysis: StrategyAnalysisRef | None = None
    min_ready: Duration = 0
    progress_deadline: Duration | None = None
    health: StrategyHealth | None = None


class RollingStrategy(_Spec):
    """Instances replaced batch by batch."""

    kind: Literal["rolling"]
    replicas: int | None = Field(None, ge=1)
    batch_size: CountOrShare = 1
    max_surge: CountOrShare = 1
    max_unavailable: CountOrShare = 0
    min_ready: Duration = 0
    analysis: StrategyAnalysisRef | None = None
    progress_deadline: Duration | None = None
    health: StrategyHealth | None = None


class RecreateStrategy(_Spec):
    """The old release stopped, then the new one started."""

    kind: Literal["recreate"]
    replicas: int | None = Field(None, ge=1)
    progress_deadline: Duration | None = None
    health: StrategyHealth | None = None


class ArgoRolloutsStrategy(BaseModel):
    """Argo Rollouts' spelling: ``{"canary": {...}}``, ``{"blueGreen": {...}}``, or a whole
    ``Rollout`` manifest (docs/compatibility.md)."""

    model_config = ConfigDict(extra="allow")

    canary: dict[str, Any] | None = None
    blueGreen: dict[str, Any] | None = None  # noqa: N815 -- Argo's key
    apiVersion: str | None = None  # noqa: N815 -- Argo's key
    spec: dict[str, Any] | None = None


class CodeDeployStrategy(_Spec):
    """An AWS CodeDeploy deployment configuration's name, e.g. ECSCanary10Percent5Minutes."""

    codedeploy: str


Ours = Annotated[
    CanaryStrategy | BlueGreenStrategy | RollingStrategy | RecreateStrategy,
    Field(discriminator="kind"),
]


def _an_object(value: Any) -> Any:
    """The one check made here: a strategy is a JSON object (the rest is strategies.spec's)."""
    if not isinstance(value, dict):
        raise ValueError('a strategy is a JSON object, e.g. {"kind": "rolling"}')
    return value


# described in the OpenAPI document, validated by strategies.spec (see the module docstring)
StrategySpec = Annotated[
    dict[str, Any],
    PlainValidator(
        _an_object, json_schema_input_type=Ours | CodeDeployStrategy | ArgoRolloutsStrategy
    ),
]

# POST /strategies/validate takes anything and says what is wrong with it as invalid_spec
StrategyToCheck = Annotated[
    Any,
    PlainValidator(
        lambda value: value, json_schema_input_type=Ours | CodeDeployStrategy | ArgoRolloutsStrategy
    ),
]


# --- the strategy as the API answers it ----------------------------------------------------------
#
# A stored strategy is always normalised (strategies.spec.normalise): one of our four kinds with
# every default filled in, durations in seconds, Argo's and CodeDeploy's spellings translated. These
# models describe that form, for the responses; like the input models they only describe: the
# value is sent as stored (``StrategyShown``), never rebuilt from them.


def _absent_unless_set(schema: dict[str, Any]) -> None:
    schema.pop("default", None)  # a key the normaliser writes only when it was given


def _sometimes(**kwargs: Any) -> Any:
    return Field(None, json_schema_extra=_absent_unless_set, **kwargs)


Seconds = Annotated[float, Field(description="a duration in seconds")]


class _Shown(BaseModel):
    model_config = ConfigDict(extra="forbid")


class HealthOut(_Shown):
    path: str
    interval: Seconds
    healthy_threshold: int = Field(ge=1)
    unhealthy_threshold: int = Field(ge=1)


class AnalysisRefOut(_Shown):
    template: str = Field(description="the analysis template's name (the first of `templates`)")
    args: dict[str, str] = Field(description="values for the template's arguments, as strings")
    templates: list[str] = _sometimes(description="when several templates run together")
    failure_limit: int = _sometimes(ge=0, description="replaces each metric's failure_limit")
    interval: Seconds = _sometimes(description="replaces each metric's interval")


class BackgroundAnalysisOut(AnalysisRefOut):
    start_at_step: int = Field(ge=0, description="the step it starts at (0-based)")


class PauseOut(_Shown):
    duration: Seconds = _sometimes(description="absent: until someone presses Promote")


class CanaryScaleOut(_Shown):
    """One of the three, as given."""

    replicas: int = _sometimes(ge=0)
    weight: int = _sometimes(ge=0, le=100)
    match_traffic_weight: bool = _sometimes()


class StepSetWeightOut(_Shown):
    set_weight: int = Field(ge=0, le=100, description="the share of requests the canary gets, %")


class StepPauseOut(_Shown):
    pause: PauseOut


class StepSetCanaryScaleOut(_Shown):
    set_canary_scale: CanaryScaleOut


class StepAnalysisOut(_Shown):
    analysis: AnalysisRefOut


class StepSetHeaderRouteOut(_Shown):
    set_header_route: dict[str, Any] = Field(description="route requests matching headers")


class StepSetMirrorRouteOut(_Shown):
    set_mirror_route: dict[str, Any] = Field(description="copy matching requests to the canary")


CanaryStepOut = (
    StepSetWeightOut
    | StepPauseOut
    | StepSetCanaryScaleOut
    | StepAnalysisOut
    | StepSetHeaderRouteOut
    | StepSetMirrorRouteOut
)


class CanaryRouteOut(_Shown):
    header: str | None
    cookie: str | None
    sticky_key: str | None


class CanaryStrategyOut(_Shown):
    """A share of the requests on the new release, step by step."""

    kind: Literal["canary"]
    steps: list[CanaryStepOut] = Field(min_length=1)
    stable_replicas: int = Field(ge=1)
    canary_replicas: Literal["match_weight"] | int
    route: CanaryRouteOut
    analysis: BackgroundAnalysisOut | None
    min_ready: Seconds
    progress_deadline: Seconds
    health: HealthOut


class SmokeCheckOut(_Shown):
    path: str
    status: int
    body_contains: str | None


class BlueGreenStrategyOut(_Shown):
    """The idle side deployed and checked on a preview, then one switch."""

    kind: Literal["blue_green"]
    replicas: int = Field(ge=1)
    preview_replicas: int = Field(ge=1)
    smoke: list[SmokeCheckOut]
    auto_promote: Seconds | None = Field(description="null: wait for Promote")
    scale_down_delay: Seconds
    pre_promotion_analysis: AnalysisRefOut | None
    post_promotion_analysis: AnalysisRefOut | None
    min_ready: Seconds
    progress_deadline: Seconds
    health: HealthOut


class RollingStrategyOut(_Shown):
    """Instances replaced batch by batch."""

    kind: Literal["rolling"]
    replicas: int = Field(ge=1)
    batch_size: CountOrShare
    max_surge: CountOrShare
    max_unavailable: CountOrShare
    min_ready: Seconds
    analysis: AnalysisRefOut | None
    progress_deadline: Seconds
    health: HealthOut


class RecreateStrategyOut(_Shown):
    """The old release stopped, then the new one started."""

    kind: Literal["recreate"]
    replicas: int = Field(ge=1)
    progress_deadline: Seconds
    health: HealthOut


Shown = Annotated[
    CanaryStrategyOut | BlueGreenStrategyOut | RollingStrategyOut | RecreateStrategyOut,
    Field(discriminator="kind"),
]


class _DescribedAs:
    """A plain JSON object that the document describes as ``shown``: the value passes through
    as it is (no model is built from it), in both directions."""

    def __init__(self, shown: Any) -> None:
        self.shown = shown

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler):
        return core_schema.no_info_plain_validator_function(
            _an_object,
            serialization=core_schema.plain_serializer_function_ser_schema(
                lambda value: value, return_schema=core_schema.any_schema()
            ),
            json_schema_input_schema=handler.generate_schema(self.shown),
        )

    def __get_pydantic_json_schema__(self, schema: Any, handler: GetJsonSchemaHandler):
        return handler(schema["json_schema_input_schema"])


# a normalised strategy in a response (a deployment's, a target's, a default, the validator's)
StrategyShown = Annotated[dict[str, Any], _DescribedAs(Shown)]
