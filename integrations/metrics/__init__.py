"""Metric providers for canary analysis: provider name -> dotted path, imported lazily.

- ``local``: the local fleet's router counters (``integrations.metrics.local``);
- ``prometheus``: PromQL over Prometheus' HTTP API (``integrations.metrics.prometheus``).

Each implements ``integrations.base.MetricsSource``.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from integrations.base import IntegrationError, MetricsSource

PROVIDERS = {
    "local": "integrations.metrics.local.LocalMetrics",
    "prometheus": "integrations.metrics.prometheus.PrometheusMetrics",
}


def build_metrics(provider: str, **options: Any) -> MetricsSource:
    if provider not in PROVIDERS:
        known = ", ".join(sorted(PROVIDERS))
        raise IntegrationError(
            f"unknown metrics provider {provider!r}: use {known}", permanent=True
        )
    module, _, name = PROVIDERS[provider].rpartition(".")
    return getattr(import_module(module), name)(**options)
