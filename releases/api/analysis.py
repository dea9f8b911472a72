"""API: analysis templates (configuration: admins write them, anyone signed in reads them) and
the analysis runs of a deployment, with their working.

    GET    /analysis-templates                  {"items": [...], "next": null}
    POST   /analysis-templates                  {"name", "description", "args", "metrics", "judge"},
                                                or an Argo Rollouts AnalysisTemplate /
                                                ClusterAnalysisTemplate or a Flagger
                                                MetricTemplate manifest, as it is
    GET    /analysis-templates/{name}
    PUT    /analysis-templates/{name}           create or replace (200 replaced, 201 created)
    DELETE /analysis-templates/{name}           204 (runs keep their snapshot)
    GET    /deployments/{id}/analysis           every run of the deployment, oldest first
    GET    /analysis-runs/{id}                  one run with every measurement

A template that is not valid is 422 ``invalid_template`` listing each problem by path
(``details.errors[*].path`` like ``metrics[1].failure_condition``).
"""

from __future__ import annotations

import re
from typing import Any, Literal

from django.db import transaction
from ninja import Field, Router, Status

from releases import audit
from releases.analysis.templates import (
    InvalidTemplate,
    get_template,
    invalid_template,
    validate_template,
)
from releases.api.auth import actor_for, authorize
from releases.api.common import ERRORS, created_or_conflict
from releases.api.deployments import get_deployment
from releases.api.schemas import In, Out
from releases.errors import NotFound
from releases.live.runs import analysis_list, run_dict
from releases.models.analysis import AnalysisRun, AnalysisTemplate
from strategies.analysis import argo_template, flagger_template
from strategies.analysis.template import TemplateError

router = Router()

NAME_PATTERN = r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$"
MAX_ID = 2**63 - 1


class TemplateBody(In):
    description: str = Field("", max_length=2000)
    args: list[Any] | None = None
    metrics: list[Any] = Field(..., description="the metrics; see docs/analysis.md")
    judge: dict[str, Any] | None = None


class TemplateIn(TemplateBody):
    name: str = Field(..., pattern=NAME_PATTERN, examples=["error-rate"])


class ArgoTemplateIn(In):
    """An Argo Rollouts ``AnalysisTemplate`` / ``ClusterAnalysisTemplate``, pasted as it is: the
    template is named by ``metadata.name`` and read from ``spec`` (docs/compatibility.md)."""

    apiVersion: str = Field(..., examples=["argoproj.io/v1alpha1"], max_length=100)  # noqa: N815
    kind: Literal["AnalysisTemplate", "ClusterAnalysisTemplate"]
    metadata: dict[str, Any] = Field(..., description="its name is the template's name")
    spec: dict[str, Any] = Field(..., description="args, metrics, dryRun")


class FlaggerTemplateIn(In):
    """A Flagger ``MetricTemplate``, pasted as it is: named by ``metadata.name``, its ``query``
    checked against the Canary's ``thresholdRange`` (docs/compatibility.md)."""

    apiVersion: str = Field(..., examples=["flagger.app/v1beta1"], max_length=100)  # noqa: N815
    kind: Literal["MetricTemplate"]
    metadata: dict[str, Any] = Field(..., description="its name is the template's name")
    spec: dict[str, Any] = Field(..., description="provider, query")


class TemplateOut(Out):
    name: str
    description: str
    args: list[Any]
    metrics: list[Any]
    judge: dict[str, Any]


class TemplateList(Out):
    items: list[TemplateOut]
    next: int | None = None


class RunOut(Out):
    id: int
    deployment: int
    name: str
    key: str
    step_index: int | None = Field(None, description="The canary step (0-based) that ran it.")
    args: dict[str, Any] = {}
    phase: str
    errored: bool = False
    decision: str
    why: str
    score: dict[str, Any] | None = Field(
        None,
        description="The weighted score (docs/analysis.md: `score` 0-100 and each group's) once "
        "every metric has taken its count; null before, or when a critical metric failed first.",
    )
    started_at: str | None = None
    finished_at: str | None = None
    metrics: list[Any]


class RunList(Out):
    items: list[RunOut]
    next: int | None = None


def template_dict(t: AnalysisTemplate) -> dict:
    return {
        "name": t.name,
        "description": t.description,
        **t.spec,
        "created_at": t.created_at.isoformat() if t.created_at else None,
        "updated_at": t.updated_at.isoformat() if t.updated_at else None,
        "links": {"self": f"/api/v1/analysis-templates/{t.name}"},
    }


def _spec(payload: TemplateBody) -> dict:
    raw: dict[str, Any] = {"metrics": payload.metrics}
    if payload.args is not None:
        raw["args"] = payload.args
    if payload.judge is not None:
        raw["judge"] = payload.judge
    return validate_template(raw)


def _from_manifest(payload: ArgoTemplateIn | FlaggerTemplateIn) -> tuple[str, str, dict]:
    """(name, description, normalised spec) of an Argo or Flagger manifest; 422 naming its own
    paths."""
    manifest = payload.model_dump()
    reader = flagger_template if isinstance(payload, FlaggerTemplateIn) else argo_template
    name = reader.name(manifest)
    if name is None or not re.fullmatch(NAME_PATTERN, name):
        message = (
            "is required: the template's name (1-63 lowercase letters, digits and '-'), got "
            f"{name!r}"
        )
        raise InvalidTemplate(
            f"The analysis template is invalid at metadata.name: {message}.",
            details={"errors": [{"path": "metadata.name", "message": message}]},
        )
    annotations = payload.metadata.get("annotations")
    description = ""
    if isinstance(annotations, dict) and isinstance(annotations.get("description"), str):
        description = annotations["description"][:2000]
    try:
        spec = reader.normalise(manifest)
    except TemplateError as exc:
        raise invalid_template(exc, "The analysis template is invalid") from None
    return name, description, spec


# --- templates ----------------------------------------------------------------------------------


@router.get("/analysis-templates", response={200: TemplateList, **ERRORS}, tags=["analysis"])
def list_templates(request):
    authorize(request, "analysis_template.view")
    return {"items": [template_dict(t) for t in AnalysisTemplate.objects.order_by("name")]}


@router.post("/analysis-templates", response={201: TemplateOut, **ERRORS}, tags=["analysis"])
def create_template(request, payload: TemplateIn | ArgoTemplateIn | FlaggerTemplateIn):
    """Create a template (ours, or an Argo Rollouts AnalysisTemplate or Flagger MetricTemplate
    manifest as it is); 409 if the name is taken, 422 ``invalid_template`` if it is wrong."""
    authorize(request, "analysis_template.create")
    if isinstance(payload, ArgoTemplateIn | FlaggerTemplateIn):
        name, description, spec = _from_manifest(payload)
    else:
        name, description, spec = payload.name, payload.description, _spec(payload)
    with created_or_conflict(
        f"An analysis template called {name!r} already exists.", template=name
    ):
        template = AnalysisTemplate.objects.create(name=name, description=description, spec=spec)
        audit.record(
            actor_for(request), "analysis_template.create", template, template_dict(template)
        )
    return Status(201, template_dict(template))


@router.get("/analysis-templates/{name}", response={200: TemplateOut, **ERRORS}, tags=["analysis"])
def get_template_view(request, name: str):
    authorize(request, "analysis_template.view")
    return template_dict(get_template(name))


@router.put(
    "/analysis-templates/{name}",
    response={200: TemplateOut, 201: TemplateOut, **ERRORS},
    tags=["analysis"],
)
def put_template(request, name: str, payload: TemplateBody):
    """Create or replace the template ``name``. Runs already started keep the template as it
    was when they started."""
    authorize(request, "analysis_template.update")
    if not re.fullmatch(NAME_PATTERN, name):
        message = "must be 1-63 lowercase letters, digits and '-', not starting or ending with '-'"
        raise InvalidTemplate(
            f"The template name {name!r} {message}.",
            details={"errors": [{"path": "name", "message": message}]},
        )
    spec = _spec(payload)
    with transaction.atomic():
        existing = AnalysisTemplate.objects.select_for_update().filter(name=name).first()
        if existing is None:
            template = AnalysisTemplate.objects.create(
                name=name, description=payload.description, spec=spec
            )
            audit.record(
                actor_for(request), "analysis_template.create", template, template_dict(template)
            )
            return Status(201, template_dict(template))
        before = {"description": existing.description, "spec": existing.spec}
        existing.description, existing.spec = payload.description, spec
        existing.save()
        audit.record(
            actor_for(request),
            "analysis_template.update",
            existing,
            {"description": existing.description, "spec": spec},
            before=before,
        )
    return Status(200, template_dict(existing))


@router.delete("/analysis-templates/{name}", response={204: None, **ERRORS}, tags=["analysis"])
def delete_template(request, name: str):
    authorize(request, "analysis_template.delete")
    template = get_template(name)
    with transaction.atomic():
        audit.record(actor_for(request), "analysis_template.delete", template, {"name": name})
        template.delete()
    return Status(204, None)


# --- runs ---------------------------------------------------------------------------------------


@router.get("/deployments/{id}/analysis", response={200: RunList, **ERRORS}, tags=["analysis"])
def list_runs(request, id: int):
    """Every analysis run of the deployment, oldest first, each with its metrics' latest
    baseline and canary values, interval, effect, test, verdict and why."""
    deployment = get_deployment(id)
    authorize(request, "deployment.view", deployment)
    return {"items": analysis_list(deployment), "next": None}


@router.get("/analysis-runs/{id}", response={200: RunOut, **ERRORS}, tags=["analysis"])
def get_run(request, id: int):
    """One run with every measurement of every metric (``metrics[*].history``)."""
    run = (
        AnalysisRun.objects.select_related("deployment__target__service").filter(pk=id).first()
        if 0 <= id <= MAX_ID
        else None
    )
    if run is None:
        raise NotFound(f"There is no analysis run {id}.", details={"run": id})
    try:
        authorize(request, "deployment.view", get_deployment(run.deployment_id))
    except NotFound:  # outsiders learn nothing: not even that the run exists
        raise NotFound(f"There is no analysis run {id}.", details={"run": id}) from None
    return run_dict(run, measurements=True)
