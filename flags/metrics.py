"""Flags' part of ``/metrics`` (``switchyard.metrics`` appends it to releases' own), rendered by
``prometheus_client`` from a collector that reads the database at scrape time -- like the rest of
``/metrics``, nothing is kept in a process, so every web process answers the same:

- ``switchyard_flag_evaluations_total{flag, environment, enabled}``: evaluations by whether the
  flag was on (``enabled="true"``) or off for the context, from the counts SDKs report to
  ``/api/client/metrics`` and from the OFREP evaluations served here (``EvaluationTotal``,
  kept beside the per-minute ``EvaluationCount`` rows, which are pruned after 14 days);
- ``switchyard_flag_variant_evaluations_total{flag, environment, variant}``: the same per
  variant a multivariate flag served;
- ``switchyard_flag_serving{flag, environment}``: 1 when the flag is on as SDKs see it (enabled
  and not killed), else 0; ``switchyard_flag_killed`` is 1 while its kill switch is pulled.

One query over the totals (a row per flag and environment) and one over the settings, whatever
the number of minutes counted.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from flags.models import EvaluationTotal, FlagSetting


class FlagCollector:
    def collect(self):
        evaluations = CounterMetricFamily(
            "switchyard_flag_evaluations",
            "Flag evaluations by whether the flag was on for the context.",
            labels=["flag", "environment", "enabled"],
        )
        totals = list(
            EvaluationTotal.objects.filter(flag__archived_at__isnull=True)
            .values_list("flag__key", "environment__slug", "yes", "no", "variants")
            .order_by("flag__key", "environment__slug")
        )
        for key, env, yes, no, _ in totals:
            evaluations.add_metric([key, env, "true"], yes)
            evaluations.add_metric([key, env, "false"], no)
        yield evaluations

        variants = CounterMetricFamily(
            "switchyard_flag_variant_evaluations",
            "Flag evaluations by the variant served.",
            labels=["flag", "environment", "variant"],
        )
        for key, env, _, _, counts in totals:
            for variant in sorted(counts):
                variants.add_metric([key, env, variant], int(counts[variant]))
        yield variants

        serving = GaugeMetricFamily(
            "switchyard_flag_serving",
            "1 when the flag is on as SDKs see it (enabled, not killed).",
            labels=["flag", "environment"],
        )
        killed = GaugeMetricFamily(
            "switchyard_flag_killed",
            "1 while the flag's kill switch is pulled.",
            labels=["flag", "environment"],
        )
        settings = (
            FlagSetting.objects.filter(flag__archived_at__isnull=True)
            .select_related("flag", "environment")
            .order_by("flag__key", "environment__order")
        )
        for s in settings:
            where = [s.flag.key, s.environment.slug]
            serving.add_metric(where, 1 if s.serving else 0)
            killed.add_metric(where, 1 if s.killed else 0)
        yield serving
        yield killed


def render() -> bytes:
    """The text exposition of the flags' metrics (format 0.0.4, as the rest of /metrics)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FlagCollector())
    return generate_latest(registry)
