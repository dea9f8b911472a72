"""Flags' part of ``/metrics`` (``switchyard.metrics`` appends it to releases' own), rendered by
``prometheus_client`` from a collector that reads the database at scrape time -- like the rest of
``/metrics``, nothing is kept in a process, so every web process answers the same:

- ``switchyard_flag_evaluations_total{flag, environment, enabled}``: evaluations by whether the
  flag was on (``enabled="true"``) or off for the context, from the counts SDKs report to
  ``/api/client/metrics`` and from the OFREP evaluations served here (``EvaluationCount``);
- ``switchyard_flag_variant_evaluations_total{flag, environment, variant}``: the same per
  variant a multivariate flag served;
- ``switchyard_flag_serving{flag, environment}``: 1 when the flag is on as SDKs see it (enabled
  and not killed), else 0; ``switchyard_flag_killed`` is 1 while its kill switch is pulled.

Two aggregate queries and one over the settings, whatever the number of minutes counted.
"""

from __future__ import annotations

from django.db import connection
from django.db.models import Sum
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from flags.models import EvaluationCount, FlagSetting


class FlagCollector:
    def collect(self):
        evaluations = CounterMetricFamily(
            "switchyard_flag_evaluations",
            "Flag evaluations by whether the flag was on for the context.",
            labels=["flag", "environment", "enabled"],
        )
        totals = (
            EvaluationCount.objects.filter(flag__archived_at__isnull=True)
            .values("flag__key", "environment__slug")
            .annotate(yes=Sum("yes"), no=Sum("no"))
            .order_by("flag__key", "environment__slug")
        )
        for row in totals:
            where = [row["flag__key"], row["environment__slug"]]
            evaluations.add_metric([*where, "true"], row["yes"] or 0)
            evaluations.add_metric([*where, "false"], row["no"] or 0)
        yield evaluations

        variants = CounterMetricFamily(
            "switchyard_flag_variant_evaluations",
            "Flag evaluations by the variant served.",
            labels=["flag", "environment", "variant"],
        )
        for key, env, variant, n in _variant_totals():
            variants.add_metric([key, env, variant], n)
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


def _variant_totals() -> list[tuple[str, str, str, int]]:
    """Per flag, environment and variant: the sum over every minute (``jsonb_each_text`` over
    the per-minute variant counts, summed in Postgres)."""
    counts = EvaluationCount._meta.db_table
    flags = EvaluationCount._meta.get_field("flag").related_model._meta.db_table
    envs = EvaluationCount._meta.get_field("environment").related_model._meta.db_table
    sql = f"""
        SELECT f.key, e.slug, v.key, SUM(v.value::bigint)
        FROM {counts} c
        JOIN {flags} f ON f.id = c.flag_id
        JOIN {envs} e ON e.id = c.environment_id
        CROSS JOIN LATERAL jsonb_each_text(c.variants) AS v
        WHERE f.archived_at IS NULL
        GROUP BY f.key, e.slug, v.key
        ORDER BY f.key, e.slug, v.key
    """  # the table names come from the models, nothing from a request
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return [(k, e, v, int(n)) for k, e, v, n in cursor.fetchall()]


def render() -> bytes:
    """The text exposition of the flags' metrics (format 0.0.4, as the rest of /metrics)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FlagCollector())
    return generate_latest(registry)
