"""Where a run's metrics come from: the metric query for one metric of a deployment's run (both
arms: the stable slot and release, the canary slot and release) and the provider that answers
it (``integrations.metrics``, each with its own settings). Provider calls happen outside any
transaction; a failed call is logged and becomes an error measurement, never an exception."""

from __future__ import annotations

import logging
from typing import Any

from integrations.base import Arm, IntegrationError, MetricQuery
from integrations.metrics import build_metrics
from releases.analysis import secrets
from releases.models import Deployment
from releases.models.analysis import (
    AnalysisRun,
)

logger = logging.getLogger(__name__)

MODES = {
    "sequential": "counts",
    "quantile": "histogram",
    "mann_whitney": "range",
    "threshold": "instant",
}


# --- providers ----------------------------------------------------------------------------------


def source_for(metric: dict, deployment: Deployment, run: AnalysisRun | None = None):
    """The metric's provider, with its own settings (``integrations.metrics``)."""
    if metric["provider"] == "job":  # run by the target's provider
        target = deployment.target
        options: dict[str, Any] = {
            "runner": target.provider,
            "env": metric.get("env"),
            "image": metric.get("image"),
            "backoff_limit": metric.get("backoff_limit"),
            "timeout": metric.get("timeout"),
        }
        if target.provider == "kubernetes":  # a Job in the target's namespace, labelled
            options["cluster"] = target.config
            options["labels"] = {
                "switchyard.dev/deployment": str(deployment.pk),
                "switchyard.dev/metric": metric["name"],
                **({"switchyard.dev/analysis-run": str(run.pk)} if run is not None else {}),
            }
        return build_metrics("job", **options)
    return build_metrics(
        metric["provider"], target=deployment.target.key, address=metric.get("address")
    )


def metric_query(
    metric: dict, deployment: Deployment, args: dict[str, str], arms: dict | None = None
) -> MetricQuery:
    """``arms``: the slots an experiment step's run compares (``runs.start``), instead of the
    deployment's stable and canary slots."""
    target = deployment.target
    baseline = Arm(
        deployment.stable_slot,
        deployment.from_release.version if deployment.from_release_id else None,
    )
    canary = Arm(deployment.canary_slot, deployment.release.version)
    if arms:
        baseline = Arm(arms["baseline"]["slot"], arms["baseline"].get("version"))
        canary = Arm(arms["canary"]["slot"], arms["canary"].get("version"))
    return MetricQuery(
        query=metric["query"],
        total_query=metric.get("total_query"),
        mode=MODES[metric["test"]],
        baseline=baseline,
        canary=canary,
        target=target.key,
        values={
            "target": target.key,
            "service": target.service.slug,
            "environment": target.environment.slug,
            **{f"args.{k}": v for k, v in args.items()},
        },
        step=metric["step"],
    )


def fetcher(run: AnalysisRun, deployment: Deployment):
    sources: dict[str, Any] = {}

    def fetch(metric: dict, action: str, cursor, start: float, end: float) -> dict:
        try:
            source = sources.get(metric["name"])
            if source is None:
                source = sources[metric["name"]] = source_for(metric, deployment, run)
            # secret arguments are read now and handed to the provider, never stored
            query = metric_query(
                metric,
                deployment,
                {**(run.args or {}), **secrets.values(run.spec)},
                (run.state or {}).get("arms"),
            )
            if action == "begin":
                return {"cursor": source.begin(query)}
            return source.fetch(query, cursor or {}, start, end)
        except IntegrationError as exc:
            logger.info("analysis %s, metric %s: %s", run.pk, metric["name"], exc.message)
            return {"error": exc.message, "permanent": exc.permanent}

    return fetch
