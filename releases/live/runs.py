"""Analysis runs as people see them: the API, the deployment page and the WebSocket share these
plain dicts (each metric's sides, interval, effect, threshold and verdict). They take rows and
values and never run or judge an analysis, so ``releases.analysis`` can publish through
``releases.live.events`` without a cycle."""

from __future__ import annotations

import re

from releases.live import readable
from releases.models import Deployment
from releases.models.analysis import (
    AnalysisPhase,
    AnalysisRun,
    Measurement,
)

# --- what the API and the page show -------------------------------------------------------------


def _iso(value) -> str | None:
    return value.isoformat() if value else None


def threshold_text(metric: dict) -> str:
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


def limit_of(metric: dict, value: dict) -> float | None:
    """Where the canary's statistic would start to count against it, for the analysis chart's
    threshold line: the baseline plus the margin (sequential), times 1 + the margin (quantile),
    times the allowed increase (Mann-Whitney), or a threshold condition's number; None if none."""
    seen = value.get("value") or {}
    base = seen.get("baseline")
    test, margin = metric.get("test"), metric.get("margin")
    if isinstance(base, int | float):
        if test == "sequential" and margin is not None:
            return base + margin
        if test == "quantile" and margin is not None:
            return base * (1 + margin)
        if test == "mann_whitney" and metric.get("direction", "increase") == "increase":
            return base * metric.get("allowed_increase", 1.0)
    if test == "threshold":
        found = re.search(r"[<>]=?\s*(-?\d+(?:\.\d+)?)", metric.get("success_condition") or "")
        return float(found.group(1)) if found else None
    return None


def run_dict(run: AnalysisRun, *, measurements: bool = False) -> dict:
    """A run as the API and the WebSocket show it (see releases.live.events for the shape)."""
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
            "threshold": threshold_text(metric),
            "verdict": last.get("phase"),
            "classification": last.get("classification"),
            "why": last.get("why", "Not measured yet."),
            "shown": readable.shown(metric, last),  # the table's text (releases.live.readable)
            "measurements": len(taken),
            "count": metric["count"],
        }
        if measurements:
            item["history"] = [
                {
                    "index": m.index,
                    "phase": m.phase,
                    "taken_at": _iso(m.taken_at),
                    **m.value,
                    "limit": limit_of(metric, m.value),
                }
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


def analysis_list(deployment: Deployment | int) -> list[dict]:
    """Every run of ``deployment`` (or the deployment with that id), oldest first
    (``deployment_dict``'s ``analysis``)."""
    runs = AnalysisRun.objects.filter(deployment=deployment).prefetch_related("measurements")
    return [run_dict(run) for run in runs.order_by("id")]
