"""Metric providers for canary analysis: provider name -> (source class, its settings), imported
lazily.

- ``local``: the local fleet's router counters (``integrations.metrics.local``);
- ``prometheus``: PromQL over Prometheus' HTTP API (``integrations.metrics.prometheus``);
- ``cloudwatch``: CloudWatch GetMetricData and alarm states (``integrations.metrics.cloudwatch``);
- ``web``: a JSON HTTP endpoint read with a JSONPath (``integrations.metrics.web``);
- ``job``: a command run by the target's provider (``integrations.metrics.job``);
- ``webhook``: Flagger's webhooks POSTed their payload (``integrations.metrics.webhook``).

Each implements ``integrations.base.MetricsSource`` and reads its own settings (the fleet
agent's URL and token, ``PROMETHEUS_URL``) through its settings function; what a template's
metric names (``address``, the target's key) overrides them.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from integrations.base import IntegrationError, MetricsSource

PROVIDERS = {
    "local": (
        "integrations.metrics.local.LocalMetrics",
        "integrations.local.config.settings_options",
    ),
    "prometheus": (
        "integrations.metrics.prometheus.PrometheusMetrics",
        "integrations.metrics.prometheus.settings_options",
    ),
    "cloudwatch": (
        "integrations.metrics.cloudwatch.CloudWatchMetrics",
        "integrations.aws.config.settings_options",
    ),
    "web": (
        "integrations.metrics.web.WebMetrics",
        "integrations.metrics.web.settings_options",
    ),
    "job": (
        "integrations.metrics.job.JobMetrics",
        "integrations.metrics.job.settings_options",
    ),
    "webhook": (
        "integrations.metrics.webhook.WebhookMetrics",
        "integrations.metrics.webhook.settings_options",
    ),
}


def _load(path: str):
    module, _, name = path.rpartition(".")
    return getattr(import_module(module), name)


def build_metrics(provider: str, **options: Any) -> MetricsSource:
    """The provider's source with its own settings, overridden by the options that are set."""
    if provider not in PROVIDERS:
        known = ", ".join(sorted(PROVIDERS))
        raise IntegrationError(
            f"unknown metrics provider {provider!r}: use {known}", permanent=True
        )
    source, settings = PROVIDERS[provider]
    given = {key: value for key, value in options.items() if value not in (None, "")}
    return _load(source)(**{**_load(settings)(), **given})
