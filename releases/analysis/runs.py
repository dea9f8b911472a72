"""Running canary analyses for deployments.

    run = runs.start(deployment, "error-rate", {"max": "0.05"}, key="step-3", step_index=3)
    verdict = runs.evaluate(deployment)              # once per reconcile tick
    verdict.decision                                  # pass | fail | inconclusive | running | none
    verdict.runs["step-3"]["decision"]

    runs.run_analysis(deployment, "error-rate", wait=True)   # start and see it through

A run measures its template's metrics through the metric providers (``releases.analysis
.sources``), judges each look with ``strategies.analysis`` (pure) and stores an ``AnalysisRun``
and its ``Measurement`` rows. The provider calls happen outside any transaction; the results are
then recorded with a version check on the run, so two ticks of the same deployment never both
record (the reconcile loop's lease already keeps a second worker off; this also covers ad-hoc
callers). A metric with ``measurement_retention`` keeps only its latest measurements (the
counts that judge it live in the run's state). How people see runs is ``releases.live.runs``.

How the engine wires this in (the Observation/Decision fields) is in docs/analysis.md.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.db import IntegrityError, transaction

from releases.analysis.sources import fetcher
from releases.analysis.templates import get_template, invalid_template
from releases.live.events import publish_deployment
from releases.models import Deployment, DeploymentEvent
from releases.models.analysis import (
    AnalysisPhase,
    AnalysisRun,
    Measurement,
)
from strategies.analysis import run as pure
from strategies.analysis.template import TemplateError, bind, normalise, resolve_args
from strategies.tick import key_words

logger = logging.getLogger(__name__)


WAIT_POLL = 0.2


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
    overrides: dict[str, Any] | None = None,
    arms: dict[str, dict[str, Any]] | None = None,
) -> AnalysisRun:
    """Start the analysis ``key`` of ``deployment`` (or return it if it is already running).
    ``overrides`` (the spec's reference: ``failure_limit``, ``interval``, from Flagger's
    ``threshold`` and ``interval``) replace those keys of every metric of the template.
    ``arms`` (``{"baseline": {"slot", "version"}, "canary": {...}}``, an experiment step's
    slots) is what the run compares instead of the deployment's stable and canary slots; it is
    kept in the run's ``state``."""
    running = AnalysisRun.objects.filter(deployment=deployment, key=key, phase="running").first()
    if running is not None:
        return running
    template = get_template(template_name)
    try:
        spec = template.spec
        if overrides:
            overrides = dict(overrides)
            keep = overrides.pop("measurement_retention", None) or {}
            derived = ("step", "max_count") if "interval" in overrides else ("max_count",)
            metrics = [
                {**{k: v for k, v in m.items() if k not in derived}, **overrides}
                for m in spec["metrics"]
            ]
            for metric in metrics:
                limit = keep.get(metric["name"], keep.get("*"))
                if limit is not None:
                    metric["measurement_retention"] = limit
            spec = {**spec, "metrics": metrics}
        spec = normalise(spec)  # stored templates are normalised; defaults may grow
        bound_args = resolve_args(spec, args)
        spec = bind(spec, bound_args)
    except TemplateError as exc:
        raise invalid_template(exc, f"Cannot start analysis {template_name!r}") from None
    now = time.time() if now is None else now
    state = pure.new_state(spec, now)
    if arms:
        state["arms"] = arms
    run = AnalysisRun(
        deployment=deployment,
        template=template,
        name=template.name,
        key=key,
        step_index=step_index,
        args=bound_args,
        spec=spec,
        state=state,
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
    fetch = fetcher(run, deployment)
    state, new, verdict = pure.advance(run.spec, run.state, history, now, fetch, stopped=stop)
    if stop and verdict.phase == "running":  # pragma: no cover - evaluate() never says so
        verdict = pure.evaluate(run.spec, history, state, stopped=True)
    finished = verdict.phase != "running"
    fields = {
        "state": state,
        "phase": verdict.phase,
        "reason": verdict.reason,
        "score": verdict.score,
        "summary": verdict.metrics,
        "next_at": _ts(verdict.next_at),
        "stopped": stop,
        "finished_at": _ts(now) if finished else None,
        "version": read_version + 1,
    }
    with transaction.atomic():
        updated = AnalysisRun.objects.filter(
            pk=run.pk, version=read_version, phase="running"
        ).update(**fields)
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
        _prune(run, state, {name for name, _, _ in new})
        for name, value in fields.items():  # the row as written (no re-read per tick)
            setattr(run, name, value)
        if finished:
            _record_verdict(run, verdict)
    return verdict


def _prune(run: AnalysisRun, state: dict, measured: set[str]) -> None:
    """Keep only the latest ``measurement_retention`` measurements of each metric just measured
    (and its latest one carrying a test's state, which the next measurement builds on); the
    counts that judge the metric are in the run's state, so no verdict changes."""
    for metric in run.spec["metrics"]:
        keep = metric.get("measurement_retention")
        counts = (state["metrics"].get(metric["name"]) or {}).get("counts")
        if not keep or metric["name"] not in measured or not counts:
            continue
        rows = Measurement.objects.filter(run=run, metric=metric["name"])
        old = rows.filter(index__lt=counts["taken"] - keep)
        carrier = rows.filter(value__has_key="state").order_by("-index").values("index")[:1]
        old.exclude(index__in=carrier).delete()


def _record_verdict(run: AnalysisRun, verdict: pure.Verdict) -> None:
    event = DeploymentEvent.objects.create(
        deployment_id=run.deployment_id,
        kind="analysis",
        message=f"Analysis {run.name} ({key_words(run.key)}): {verdict.decision}. {verdict.reason}"[
            :2000
        ],
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
                decision,
                f"{run['template']} ({key_words(key)}): {reason}",
                runs,
                min(pending, default=None),
            )
    return Verdict("pass", "Every analysis passed.", runs)
