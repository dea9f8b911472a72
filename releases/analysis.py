"""Running canary analyses for deployments, and showing their working.

    run = analysis.start(deployment, "error-rate", {"max": "0.05"}, key="step-3", step_index=3)
    verdict = analysis.evaluate(deployment)          # once per reconcile tick
    verdict.decision                                  # pass | fail | inconclusive | running | none
    verdict.runs["step-3"]["decision"]

    analysis.run_analysis(deployment, "error-rate", wait=True)   # start and see it through

A run measures its template's metrics through the metric providers (``integrations.metrics``),
judges each look with ``strategies.analysis`` (pure) and stores an ``AnalysisRun`` and its
``Measurement`` rows. The provider calls happen outside any transaction; the results are then
recorded with a version check on the run, so two ticks of the same deployment never both record
(the reconcile loop's lease already keeps a second worker off; this also covers ad-hoc callers).

How the engine wires this in (the Observation/Decision fields) is in docs/analysis.md.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction

from integrations.base import Arm, IntegrationError, MetricQuery
from integrations.metrics import build_metrics
from releases.errors import DomainError, NotFound
from releases.events import publish_deployment
from releases.models import Deployment, DeploymentEvent
from releases.models_analysis import (
    AnalysisPhase,
    AnalysisRun,
    AnalysisTemplate,
    Measurement,
)
from strategies.analysis import run as pure
from strategies.analysis.template import TemplateError, bind, normalise, resolve_args

logger = logging.getLogger(__name__)

MODES = {
    "sequential": "counts",
    "quantile": "histogram",
    "mann_whitney": "range",
    "threshold": "instant",
}
WAIT_POLL = 0.2


class InvalidTemplate(DomainError):
    status = 422
    code = "invalid_template"


@dataclass(frozen=True)
class Verdict:
    """Where a deployment's analyses stand. ``decision``: ``fail`` if any run failed (or
    errored), else ``inconclusive`` if any is, else ``running`` if any still measures, else
    ``pass``; ``none`` when the deployment has no analysis. ``runs``: per key, the latest run's
    ``{"id", "template", "step_index", "decision", "phase", "reason", "score"}``. ``next_at``: when
    the next measurement is due (unix seconds), so a tick can sleep until then."""

    decision: str
    reason: str
    runs: dict[str, dict] = field(default_factory=dict)
    next_at: float | None = None


def _invalid(exc: TemplateError, what: str) -> InvalidTemplate:
    errors = exc.as_dicts()
    first = errors[0]
    where = f" at {first['path']}" if first["path"] else ""
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return InvalidTemplate(f"{what}{where}: {first['message']}{more}.", details={"errors": errors})


# --- templates -----------------------------------------------------------------------------------


def validate_template(spec: Any) -> dict:
    """The normalised template, or InvalidTemplate (422) listing every problem by path."""
    try:
        return normalise(spec)
    except TemplateError as exc:
        raise _invalid(exc, "The analysis template is invalid") from None


def get_template(name: str) -> AnalysisTemplate:
    template = AnalysisTemplate.objects.filter(name=name).first()
    if template is None:
        raise NotFound(f"There is no analysis template {name!r}.", details={"template": name})
    return template


def save_template(name: str, spec: Any, description: str = "") -> tuple[AnalysisTemplate, bool]:
    """Create or replace the template ``name`` (runs already started keep their snapshot)."""
    normalised = validate_template(spec)
    template, created = AnalysisTemplate.objects.update_or_create(
        name=name, defaults={"spec": normalised, "description": description}
    )
    return template, created


# --- runs --------------------------------------------------------------------------------------


def _ts(seconds: float | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, tz=UTC)


def start(
    deployment: Deployment,
    template_name: str,
    args: dict[str, Any] | None = None,
    *,
    key: str,
    step_index: int | None = None,
    now: float | None = None,
) -> AnalysisRun:
    """Start the analysis ``key`` of ``deployment`` (or return it if it is already running)."""
    running = AnalysisRun.objects.filter(deployment=deployment, key=key, phase="running").first()
    if running is not None:
        return running
    template = get_template(template_name)
    try:
        spec = normalise(template.spec)  # stored templates are normalised; defaults may grow
        bound_args = resolve_args(spec, args)
        spec = bind(spec, bound_args)
    except TemplateError as exc:
        raise _invalid(exc, f"Cannot start analysis {template_name!r}") from None
    now = time.time() if now is None else now
    run = AnalysisRun(
        deployment=deployment,
        template=template,
        name=template.name,
        key=key,
        step_index=step_index,
        args=bound_args,
        spec=spec,
        state=pure.new_state(spec, now),
        started_at=_ts(now),
        next_at=_ts(now),
    )
    try:
        with transaction.atomic():
            run.save()
    except IntegrityError:  # started meanwhile by someone else: theirs is the run
        return AnalysisRun.objects.get(deployment=deployment, key=key, phase="running")
    return run


def evaluate(deployment: Deployment, now: float | None = None) -> Verdict:
    """One tick of every running analysis of ``deployment``; then where they all stand."""
    now = time.time() if now is None else now
    for run in AnalysisRun.objects.filter(deployment=deployment, phase="running"):
        run.deployment = deployment  # already loaded, with its target and releases
        advance(run, now)
    return verdict_of(deployment)


def stop(deployment: Deployment, key: str | None = None, now: float | None = None) -> None:
    """End running analyses (``key``, or all): background analysis when the canary is done. A
    stopped run is judged on what it measured (below ``min_samples``: inconclusive)."""
    now = time.time() if now is None else now
    runs = AnalysisRun.objects.filter(deployment=deployment, phase="running")
    if key is not None:
        runs = runs.filter(key=key)
    for run in runs:
        run.deployment = deployment
        advance(run, now, stop=True)


def run_analysis(
    deployment: Deployment,
    template_name: str,
    args: dict[str, Any] | None = None,
    *,
    key: str = "manual",
    step_index: int | None = None,
    wait: bool = False,
    timeout: float | None = None,
) -> pure.Verdict:
    """Start (or continue) an analysis and advance it once; with ``wait``, until it decides
    (or ``timeout`` seconds pass, then it is stopped and judged on what it saw)."""
    run = start(deployment, template_name, args, key=key, step_index=step_index)
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        result = advance(run, time.time())
        if not wait or result.decision != "running":
            return result
        if deadline is not None and time.monotonic() >= deadline:
            return advance(run, time.time(), stop=True)
        delay = WAIT_POLL if result.next_at is None else result.next_at - time.time()
        time.sleep(min(max(delay, 0.01), 5.0))
        run.refresh_from_db()


def _history(run: AnalysisRun) -> dict[str, list[dict]]:
    history: dict[str, list[dict]] = {}
    for m in run.measurements.order_by("metric", "index"):
        history.setdefault(m.metric, []).append(m.value)
    return history


def advance(run: AnalysisRun, now: float, *, stop: bool = False) -> pure.Verdict:
    """Measure what is due for ``run`` (network calls, no transaction), then record it."""
    read_version = run.version
    if run.phase != AnalysisPhase.RUNNING:
        history = _history(run)
        return pure.evaluate(run.spec, history, run.state)
    deployment = run.deployment
    history = _history(run)
    fetch = _fetcher(run, deployment)
    state, new, verdict = pure.advance(run.spec, run.state, history, now, fetch, stopped=stop)
    if stop and verdict.phase == "running":  # pragma: no cover - evaluate() never says so
        verdict = pure.evaluate(run.spec, history, state, stopped=True)
    finished = verdict.phase != "running"
    with transaction.atomic():
        updated = AnalysisRun.objects.filter(
            pk=run.pk, version=read_version, phase="running"
        ).update(
            state=state,
            phase=verdict.phase,
            reason=verdict.reason,
            score=verdict.score,
            summary=verdict.metrics,
            next_at=_ts(verdict.next_at),
            stopped=stop,
            finished_at=_ts(now) if finished else None,
            version=read_version + 1,
        )
        if not updated:  # another tick recorded first: its results stand
            run.refresh_from_db()
            return pure.evaluate(run.spec, _history(run), run.state)
        Measurement.objects.bulk_create(
            [
                Measurement(
                    run=run,
                    metric=name,
                    index=index,
                    phase=result["phase"],
                    value=result,
                    window_start=_ts((result.get("window") or [None])[0]),
                    taken_at=_ts(result.get("at", now)),
                )
                for name, index, result in new
            ]
        )
        if finished:
            _record_verdict(run, verdict)
    run.refresh_from_db()
    return verdict


def _record_verdict(run: AnalysisRun, verdict: pure.Verdict) -> None:
    event = DeploymentEvent.objects.create(
        deployment_id=run.deployment_id,
        kind="analysis",
        message=f"Analysis {run.name} ({run.key}): {verdict.decision}. {verdict.reason}"[:2000],
        data={
            "run": run.pk,
            "key": run.key,
            "template": run.name,
            "step_index": run.step_index,
            "decision": verdict.decision,
            "phase": verdict.phase,
            "score": verdict.score,
        },
        actor="analysis",
    )
    publish_deployment(run.deployment_id, [event.pk])


def verdict_of(deployment: Deployment) -> Verdict:
    """Where ``deployment``'s analyses stand (the latest run per key), without measuring."""
    latest: dict[str, AnalysisRun] = {}
    for run in AnalysisRun.objects.filter(deployment=deployment).order_by("id"):
        latest[run.key] = run
    if not latest:
        return Verdict("none", "This deployment has no analysis.")
    runs = {
        key: {
            "id": run.pk,
            "template": run.name,
            "step_index": run.step_index,
            "decision": run.decision,
            "phase": run.phase,
            "reason": run.reason,
            "score": (run.score or {}).get("score"),
        }
        for key, run in latest.items()
    }
    pending = [r.next_at.timestamp() for r in latest.values() if r.phase == "running" and r.next_at]
    for decision in ("fail", "inconclusive", "running"):
        hits = [(k, r) for k, r in runs.items() if r["decision"] == decision]
        if hits:
            key, run = hits[0]
            reason = run["reason"] or "Measuring."
            return Verdict(
                decision, f"{run['template']} ({key}): {reason}", runs, min(pending, default=None)
            )
    return Verdict("pass", "Every analysis passed.", runs)


# --- providers ----------------------------------------------------------------------------------


def prometheus_url() -> str:
    return settings.PROMETHEUS_URL


def _source(metric: dict, deployment: Deployment):
    if metric["provider"] == "local":
        return build_metrics(
            "local",
            fleet_url=settings.FLEET_URL,
            token=settings.FLEET_TOKEN,
            target=deployment.target.key,
        )
    return build_metrics(metric["provider"], address=metric.get("address") or prometheus_url())


def metric_query(metric: dict, deployment: Deployment, args: dict[str, str]) -> MetricQuery:
    target = deployment.target
    return MetricQuery(
        query=metric["query"],
        total_query=metric.get("total_query"),
        mode=MODES[metric["test"]],
        baseline=Arm(
            deployment.stable_slot,
            deployment.from_release.version if deployment.from_release_id else None,
        ),
        canary=Arm(deployment.canary_slot, deployment.release.version),
        target=target.key,
        values={
            "target": target.key,
            "service": target.service.slug,
            "environment": target.environment.slug,
            **{f"args.{k}": v for k, v in args.items()},
        },
        step=metric["step"],
    )


def _fetcher(run: AnalysisRun, deployment: Deployment):
    sources: dict[str, Any] = {}

    def fetch(metric: dict, action: str, cursor, start: float, end: float) -> dict:
        try:
            source = sources.get(metric["name"])
            if source is None:
                source = sources[metric["name"]] = _source(metric, deployment)
            query = metric_query(metric, deployment, run.args or {})
            if action == "begin":
                return {"cursor": source.begin(query)}
            return source.fetch(query, cursor or {}, start, end)
        except IntegrationError as exc:
            logger.info("analysis %s, metric %s: %s", run.pk, metric["name"], exc.message)
            return {"error": exc.message, "permanent": exc.permanent}

    return fetch


# --- what the API and the page show -------------------------------------------------------------


def _iso(value) -> str | None:
    return value.isoformat() if value else None


def _threshold_text(metric: dict) -> str:
    test = metric["test"]
    if test == "threshold":
        parts = []
        if metric.get("success_condition"):
            parts.append(f"pass if {metric['success_condition']}")
        if metric.get("failure_condition"):
            parts.append(f"fail if {metric['failure_condition']}")
        return "; ".join(parts)
    if test in ("sequential", "quantile"):
        margin = metric.get("margin")
        within = (
            f"; pass within {metric['margin_ratio']:g}x"
            if metric.get("margin_ratio")
            else f"; pass within {margin:g} points"
            if test == "sequential" and margin is not None
            else f"; pass within +{margin:.0%} at p{metric['percentile'] * 100:g}"
            if margin is not None
            else ""
        )
        return f"fail when evidence >= {1 / metric['alpha']:g} (alpha {metric['alpha']:g}){within}"
    return (
        f"Mann-Whitney {metric['confidence'] * 100:g}% CI beyond ±{metric['tolerance'] * 100:g}% "
        f"of the shift, mean ratio >= {metric['allowed_increase']:g}"
        if metric["direction"] != "decrease"
        else f"mean ratio <= {metric['allowed_decrease']:g}"
    )


def run_dict(run: AnalysisRun, *, measurements: bool = False) -> dict:
    """A run as the API and the WebSocket show it (see releases.events for the shape)."""
    rows = list(run.measurements.order_by("metric", "index"))
    by_metric: dict[str, list[Measurement]] = {}
    for m in rows:
        by_metric.setdefault(m.metric, []).append(m)
    metrics = []
    for metric in run.spec.get("metrics", []):
        taken = by_metric.get(metric["name"], [])
        last = taken[-1].value if taken else {}
        item = {
            "name": metric["name"],
            "provider": metric["provider"],
            "unit": metric.get("unit", ""),
            "test": metric["test"],
            "critical": metric["critical"],
            "dry_run": metric["dry_run"],
            "baseline": last.get("baseline"),
            "canary": last.get("canary"),
            "value": last.get("value"),
            "interval": last.get("interval"),
            "effect": last.get("effect"),
            "threshold": _threshold_text(metric),
            "verdict": last.get("phase"),
            "classification": last.get("classification"),
            "why": last.get("why", "Not measured yet."),
            "measurements": len(taken),
            "count": metric["count"],
        }
        if measurements:
            item["history"] = [
                {"index": m.index, "phase": m.phase, "taken_at": _iso(m.taken_at), **m.value}
                for m in taken
            ]
        metrics.append(item)
    phase = "failed" if run.phase == AnalysisPhase.ERROR else run.phase
    return {
        "id": run.pk,
        "deployment": run.deployment_id,
        "name": run.name,
        "key": run.key,
        "step_index": run.step_index,
        "args": run.args,
        "phase": phase,
        "errored": run.phase == AnalysisPhase.ERROR,
        "decision": run.decision,
        "why": run.reason,
        "score": run.score,
        "started_at": _iso(run.started_at),
        "finished_at": _iso(run.finished_at),
        "metrics": metrics,
        "links": {"self": f"/api/v1/analysis-runs/{run.pk}"},
    }


def analysis_list(deployment: Deployment) -> list[dict]:
    """Every run of ``deployment``, oldest first (``deployment_dict``'s ``analysis``)."""
    runs = AnalysisRun.objects.filter(deployment=deployment).prefetch_related("measurements")
    return [run_dict(run) for run in runs.order_by("id")]
