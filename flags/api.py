"""The flags management API (django-ninja), mounted at ``/api/v1/`` beside the releases API with
the same auth (API token or session), parser and JSON errors (``releases.api.auth``):

- ``GET/POST /flags``, ``GET/PATCH /flags/{key}``, ``POST /flags/{key}/archive``;
- ``PUT /flags/{key}/environments/{env}``: ``{"enabled", "strategies", "variants", "version"}``
  (any subset; ``version`` guards against lost updates, 409 when stale);
- ``POST /flags/{key}/environments/{env}/kill`` (``{"reason"}``), ``/restore``,
  ``/rollout`` (``{"percent"}``);
- ``POST /flags/{key}/environments/{env}/experiment`` (``{"control", "goal", "mde",
  "alpha"}``), ``GET …/experiment`` (the result), ``POST …/experiment/stop``;
- ``GET /flags/stale``; ``GET /segments``, ``PUT /segments/{name}``;
- ``POST /sdk-tokens`` (``{"environment", "name"}``; the token is in the answer, once).

Every change goes through ``flags.actions``; the caller's role (and API token) is checked first.
"""

from __future__ import annotations

from typing import Any

from ninja import NinjaAPI, Status
from ninja.errors import HttpError

from flags import actions, analysis, experiments, governance, plans, sdk, stale
from flags.models import Flag, FlagSetting, FlagType, RolloutPlan, Segment, ValueKind
from releases.api import openapi
from releases.api.auth import AUTH, StrictJSONParser, actor_for, install_error_handlers
from releases.api.schemas import In  # unknown fields are errors; JSON types strict
from releases.errors import NotFound
from releases.models import Deployment, Environment

# beyond what each operation's shape says (releases.api.openapi): people with no role anywhere
# get 404 from every operation (flags.governance); these may conflict (a duplicate key, an
# archived flag, a stale ``version``, an open plan, a plan's state)
RULES = openapi.Rules(
    body_lookups=frozenset({("POST", "/sdk-tokens")}),
    conflicts=frozenset(
        {
            ("POST", "/flags"),
            ("PUT", "/flags/{}/environments/{}"),
            ("POST", "/flags/{}/environments/{}/kill"),
            ("POST", "/flags/{}/environments/{}/restore"),
            ("POST", "/flags/{}/environments/{}/rollout"),
            ("POST", "/flags/{}/environments/{}/plan"),
            ("POST", "/flags/{}/environments/{}/plan/{}"),
        }
    ),
    always=frozenset({"401", "404", "503"}),
)


class FlagsAPI(NinjaAPI):
    def get_openapi_schema(self, *args, **kwargs):
        """With each operation's real error responses, in the releases API's error shape."""
        return openapi.truthful(super().get_openapi_schema(*args, **kwargs), rules=RULES)


api = FlagsAPI(
    title="Switchyard flags API",
    version="1",
    urls_namespace="flags-api",
    auth=AUTH,
    parser=StrictJSONParser(),
    docs_url="/flags/docs",
    openapi_url="/flags/openapi.json",
)
install_error_handlers(api)


class FlagIn(In):
    key: str
    flag_type: str = FlagType.RELEASE
    kind: str = ValueKind.BOOLEAN
    description: str = ""
    default_value: Any = None


class FlagPatch(In):
    # absent: unchanged; never null (a null description was a 500: the column is NOT NULL)
    description: str = None
    flag_type: str = None
    default_value: Any = None  # null is a value here (checked against the flag's kind)
    impression_data: bool = None


class SettingIn(In):
    enabled: bool | None = None
    strategies: list[Any] | None = None
    variants: list[Any] | None = None
    version: int | None = None


class KillIn(In):
    reason: str = ""


class RolloutIn(In):
    percent: int


class PlanIn(In):
    steps: list[Any]
    # deploy, then release: the plan waits for this deployment (in the same environment) first
    deployment: int | None = None


class ReasonIn(In):
    reason: str = ""


class ExperimentIn(In):
    control: str
    goal: str = ""
    mde: float = 0.05
    alpha: float = 0.05


class SegmentIn(In):
    constraints: list[Any]
    description: str = ""


class TokenIn(In):
    environment: str
    name: str


def _check(request, action, environment=None):
    governance.check(request.user, action, environment, token=getattr(request, "api_token", None))


def _environment(slug: str) -> Environment:
    env = Environment.objects.filter(slug=slug).first()
    if env is None:
        raise NotFound(f"There is no environment {slug!r}.", details={"environment": slug})
    return env


def setting_out(s: FlagSetting) -> dict:
    return {
        "environment": s.environment.slug,
        "enabled": s.enabled,
        "serving": s.serving,
        "killed": s.killed,
        "killed_by": s.killed_by or None,
        "kill_reason": s.kill_reason or None,
        "strategies": s.strategies,
        "variants": s.variants,
        "version": s.version,
        "changed_at": s.changed_at,
        "last_evaluated_at": s.last_evaluated_at,
    }


def flag_out(flag: Flag) -> dict:
    return {
        "key": flag.key,
        "flag_type": flag.flag_type,
        "kind": flag.kind,
        "description": flag.description,
        "default_value": flag.default_value,
        "archived": flag.archived_at is not None,
        "created_at": flag.created_at,
        "environments": [
            setting_out(s)
            for s in flag.settings.select_related("environment").order_by("environment__order")
        ],
    }


@api.get("/flags", tags=["flags"])
def list_flags(request):
    _check(request, "flag.view")
    return [flag_out(f) for f in Flag.objects.filter(archived_at__isnull=True)]


@api.post("/flags", response={201: dict}, tags=["flags"])
def create_flag(request, body: FlagIn):
    _check(request, "flag.create")
    flag = actions.create_flag(
        actor_for(request),
        body.key,
        flag_type=body.flag_type,
        kind=body.kind,
        description=body.description,
        default_value=body.default_value,
    )
    return Status(201, flag_out(flag))


@api.get("/flags/stale", tags=["flags"])
def stale_flags(request):
    _check(request, "flag.view")
    return {"unused_days": stale.unused_days(), "flags": stale.report()}


@api.get("/flags/{key}", tags=["flags"])
def get_flag(request, key: str):
    _check(request, "flag.view")
    return flag_out(actions.flag_by_key(key))


@api.patch("/flags/{key}", tags=["flags"])
def patch_flag(request, key: str, body: FlagPatch):
    _check(request, "flag.update")
    changes = body.dict(exclude_unset=True)
    return flag_out(actions.update_flag(actor_for(request), actions.flag_by_key(key), **changes))


@api.post("/flags/{key}/archive", tags=["flags"])
def archive(request, key: str):
    _check(request, "flag.archive")
    return flag_out(actions.archive_flag(actor_for(request), actions.flag_by_key(key)))


@api.put("/flags/{key}/environments/{env}", tags=["flags"])
def put_setting(request, key: str, env: str, body: SettingIn):
    environment = _environment(env)
    _check(request, "flag.change", environment)
    flag, actor = actions.flag_by_key(key), actor_for(request)
    version = body.version
    setting = None
    if body.strategies is not None:
        setting = actions.set_strategies(actor, flag, environment, body.strategies, version=version)
        version = None if version is None else setting.version
    if body.variants is not None:
        setting = actions.set_variants(actor, flag, environment, body.variants, version=version)
        version = None if version is None else setting.version
    if body.enabled is not None:
        setting = actions.set_enabled(actor, flag, environment, body.enabled, version=version)
    if setting is None:
        raise HttpError(400, "Send at least one of enabled, strategies, variants.")
    return setting_out(setting)


@api.post("/flags/{key}/environments/{env}/kill", tags=["flags"])
def kill(request, key: str, env: str, body: KillIn):
    environment = _environment(env)
    _check(request, "flag.kill", environment)
    return setting_out(
        actions.kill(actor_for(request), actions.flag_by_key(key), environment, body.reason)
    )


@api.post("/flags/{key}/environments/{env}/restore", tags=["flags"])
def restore(request, key: str, env: str):
    environment = _environment(env)
    _check(request, "flag.kill", environment)
    return setting_out(actions.restore(actor_for(request), actions.flag_by_key(key), environment))


@api.post("/flags/{key}/environments/{env}/rollout", tags=["flags"])
def rollout(request, key: str, env: str, body: RolloutIn):
    environment = _environment(env)
    _check(request, "flag.change", environment)
    return setting_out(
        actions.set_rollout(actor_for(request), actions.flag_by_key(key), environment, body.percent)
    )


def plan_out(p: RolloutPlan) -> dict:
    return {
        "id": p.pk,
        "flag": p.flag.key,
        "environment": p.environment.slug,
        "steps": p.steps,
        "step": p.step_index,
        "percent": p.percent,
        "state": p.state,
        "step_started_at": p.step_started_at,
        "message": p.message,
        "deployment": p.deployment_id,
        "analysis": analysis.summary(p),
    }


@api.post("/flags/{key}/environments/{env}/plan", response={201: dict}, tags=["plans"])
def start_plan(request, key: str, env: str, body: PlanIn):
    environment = _environment(env)
    _check(request, "flag.change", environment)
    deployment = None
    if body.deployment is not None:
        deployment = Deployment.objects.select_related("target").filter(pk=body.deployment).first()
        if deployment is None:
            raise NotFound(f"There is no deployment {body.deployment}.")
    plan = plans.start(
        actor_for(request), actions.flag_by_key(key), environment, body.steps, deployment
    )
    return Status(201, plan_out(plan))


@api.get("/flags/{key}/environments/{env}/plan", tags=["plans"])
def get_plan(request, key: str, env: str):
    environment = _environment(env)
    _check(request, "flag.view")
    plan = (
        RolloutPlan.objects.select_related("flag", "environment")
        .filter(flag__key=key, environment=environment)
        .first()
    )
    if plan is None:
        raise NotFound(f"{key} has no rollout plan in {env}.")
    return plan_out(plan)


@api.post("/flags/{key}/environments/{env}/plan/{move}", tags=["plans"])
def move_plan(request, key: str, env: str, move: str, body: ReasonIn):
    moves = {"promote": plans.promote, "step-back": plans.step_back, "abort": plans.abort}
    if move not in moves:
        raise NotFound(f"A plan can promote, step-back or abort, not {move!r}.")
    environment = _environment(env)
    _check(request, "flag.change", environment)
    plan = plans.open_plan(key, env)
    args = () if move == "promote" else (body.reason,)
    return plan_out(moves[move](actor_for(request), plan, *args))


@api.post("/flags/{key}/environments/{env}/experiment", response={201: dict}, tags=["experiments"])
def start_experiment(request, key: str, env: str, body: ExperimentIn):
    environment = _environment(env)
    _check(request, "flag.change", environment)
    row = experiments.start(
        actor_for(request),
        actions.flag_by_key(key),
        environment,
        body.control,
        goal=body.goal,
        mde=body.mde,
        alpha=body.alpha,
    )
    return Status(201, experiments.result(row))


def _experiment(key: str, env: str):
    environment = _environment(env)
    row = experiments.open_or_latest(actions.flag_by_key(key), environment)
    if row is None:
        raise NotFound(f"{key} has no experiment in {env}.")
    return row


@api.get("/flags/{key}/environments/{env}/experiment", tags=["experiments"])
def get_experiment(request, key: str, env: str):
    _check(request, "flag.view")
    return experiments.result(_experiment(key, env))


@api.post("/flags/{key}/environments/{env}/experiment/stop", tags=["experiments"])
def stop_experiment(request, key: str, env: str):
    environment = _environment(env)
    _check(request, "flag.change", environment)
    return experiments.result(experiments.stop(actor_for(request), _experiment(key, env)))


@api.get("/segments", tags=["segments"])
def list_segments(request):
    _check(request, "flag.view")
    return [
        {"id": s.pk, "name": s.name, "description": s.description, "constraints": s.constraints}
        for s in Segment.objects.all()
    ]


@api.put("/segments/{name}", tags=["segments"])
def put_segment(request, name: str, body: SegmentIn):
    _check(request, "segment.change")
    s = actions.save_segment(actor_for(request), name, body.constraints, body.description)
    return {"id": s.pk, "name": s.name, "description": s.description, "constraints": s.constraints}


@api.post("/sdk-tokens", response={201: dict}, tags=["sdk tokens"])
def create_sdk_token(request, body: TokenIn):
    environment = _environment(body.environment)
    _check(request, "sdktoken.create", environment)
    row, token = sdk.create_token(actor_for(request), environment, body.name)
    return Status(
        201,
        {"prefix": row.prefix, "name": row.name, "environment": environment.slug, "token": token},
    )
