"""CloudWatch metrics (GetMetricData) and alarms as analysis samples.

A template metric with ``"provider": "cloudwatch"`` has a JSON ``query`` (and, for the
sequential error-rate test, a ``total_query``), one of:

- a metric: ``{"namespace": "AWS/ApplicationELB", "metric": "HTTPCode_Target_5XX_Count",
  "stat": "Sum", "dimensions": {"LoadBalancer": "app/api/50dc6c495c0c9188",
  "TargetGroup": {"blue": "targetgroup/api-blue/...", "green": "targetgroup/api-green/..."}}}``.
  A dimension's value is a string (``{{slot}}``, ``{{version}}`` and ``{{args.NAME}}`` are
  filled in, JSON-escaped) or an object of slot -> value (each arm its own target group); the
  value ``"@slot-version"`` is the Lambda version a slot's alias (``switchyard-<slot>``, see
  ``integrations.aws.lambdas``) points at, for ``{"FunctionName": "thumbs", "Resource":
  "thumbs:live", "ExecutedVersion": "@slot-version"}``. ``stat`` is any CloudWatch statistic:
  ``Sum``, ``Average``, ``p99``, ``tm90``... (default ``Sum``);
- alarms: ``{"alarms": ["api-5xx", "api-latency"]}``: one value per alarm, 1 when it is in
  ``ALARM``, else 0, the same for both arms. A threshold metric with
  ``"failure_condition": "canary > 0"`` in a background analysis is CodeDeploy's alarm-based
  rollback: the first alarm to fire fails the analysis and the deployment rolls back.

Modes: ``counts`` sums ``query`` (errors) and ``total_query`` (all requests) over the window;
``range`` returns one value per period (``step`` rounded up to what CloudWatch accepts);
``instant`` the latest value in the last period. One GetMetricData call per fetch serves both
arms. No datapoints is an empty series. Errors are those of ``integrations.aws.errors``.
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from integrations.aws.config import options_for
from integrations.aws.errors import calling
from integrations.aws.session import client
from integrations.base import IntegrationError, MetricQuery

logger = logging.getLogger(__name__)

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_.\-]+)\s*\}\}")
WINDOW = 60  # the live charts' period: the ALB's and Lambda's metrics are per minute


@dataclass(frozen=True)
class ChartMetrics:
    """Which CloudWatch metrics a kind of target's live charts read, per slot."""

    namespace: str
    requests: tuple[str, str]  # (metric, stat): every request (invocation)
    errors: tuple[str, str]  # the failed ones, charted as 5xx
    latency: str  # the metric whose p95/p99 are charted
    to_ms: float  # its unit in milliseconds


ALB_CHARTS = ChartMetrics(
    "AWS/ApplicationELB",
    ("RequestCount", "Sum"),
    ("HTTPCode_Target_5XX_Count", "Sum"),
    "TargetResponseTime",
    1000.0,  # seconds
)
LAMBDA_CHARTS = ChartMetrics(
    "AWS/Lambda", ("Invocations", "Sum"), ("Errors", "Sum"), "Duration", 1.0
)
HIGH_RESOLUTION = (1, 5, 10, 30)
SLOT_VERSION = "@slot-version"


class CloudWatchMetrics:
    def __init__(self, *, target: str = "", **settings: Any) -> None:
        self.target = target
        self.options = options_for({}, settings)
        self.cw = client("cloudwatch", self.options)
        self._lambda = None

    @classmethod
    def read_counters(
        cls, keys: list[str], *, configs: dict[str, dict] | None = None, **settings: Any
    ) -> dict[str, dict]:
        """The live charts' readings of AWS targets: per slot, the counts over the last complete
        CloudWatch period (``WINDOW`` seconds), as a windowed reading
        (``releases.live.charts``): requests, errors (as 5xx) and latency p95/p99 (ms) of

        - an ``aws-ecs`` target: the ALB's ``RequestCount``, ``HTTPCode_Target_5XX_Count`` and
          ``TargetResponseTime`` of each slot's target group;
        - an ``aws-lambda`` target: ``Invocations``, ``Errors`` and ``Duration`` of the traffic
          alias (``Resource`` ``function:alias``) by ``ExecutedVersion``, each slot's the version
          its ``switchyard-<slot>`` alias points at (one ``ListAliases``);
        - an ``aws-route53`` target: the ALB metrics of each slot's own backend, when its slot
          names one (``"alb": {"load_balancer": "app/…", "target_group": "targetgroup/…"}``);
          a health check counts no requests, so a slot without it has no chart.

        Two GetMetricData calls per target (the percentiles apart: a source that cannot compute
        them, as moto cannot, leaves the chart its rates)."""
        out = {}
        for key in keys:
            config = (configs or {}).get(key) or {}
            source = cls(target=key, **{**settings, "region": config.get("region")})
            try:
                kind, dims, versions = source.chart_dimensions(config)
                if not dims:
                    continue
                reading = source.window_reading(dims, kind, versions)
            except IntegrationError as exc:
                logger.warning("live charts of %s: %s", key, exc.message)
                continue
            if reading is not None:
                out[key] = reading
        return out

    def chart_dimensions(
        self, config: dict[str, Any]
    ) -> tuple[ChartMetrics, dict[str, dict[str, str]], dict[str, str]]:
        """The kind of metrics, per slot their dimensions, and per slot the release it runs
        when the metrics tell it apart (a Lambda version), of a target's config."""
        if config.get("function_name"):
            return (LAMBDA_CHARTS, *self._lambda_dimensions(config))
        if config.get("hosted_zone_id"):
            return ALB_CHARTS, backend_dimensions(config), {}
        return ALB_CHARTS, alb_dimensions(config), {}

    def _lambda_dimensions(
        self, config: dict[str, Any]
    ) -> tuple[dict[str, dict[str, str]], dict[str, str]]:
        function = config["function_name"]
        resource = f"{function}:{config.get('alias') or 'live'}"
        if self._lambda is None:
            self._lambda = client("lambda", self.options)
        with calling("lambda", "ListAliases", f"function {function}"):
            pages = self._lambda.get_paginator("list_aliases").paginate(FunctionName=function)
            aliases = [a for page in pages for a in page.get("Aliases", [])]
        dims, releases = {}, {}
        for alias in aliases:
            name = alias["Name"]
            if not name.startswith("switchyard-"):
                continue
            slot = name.removeprefix("switchyard-")
            dims[slot] = {
                "FunctionName": function,
                "Resource": resource,
                "ExecutedVersion": alias["FunctionVersion"],
            }
            try:
                release = json.loads(alias.get("Description") or "{}").get("release")
            except (ValueError, AttributeError):
                release = None
            if release:
                releases[slot] = str(release)
        return dims, releases

    def window_reading(
        self,
        dims: dict[str, dict[str, str]],
        kind: ChartMetrics = ALB_CHARTS,
        releases: dict[str, str] | None = None,
    ) -> dict[str, Any] | None:
        """The latest period with requests, per slot (None when no slot had any lately)."""
        end = time.time()
        # periods aligned to the minute, as CloudWatch rounds a start time down to it
        start = (end // WINDOW - 5) * WINDOW
        metrics = {
            "requests": kind.requests,
            "5xx": kind.errors,
            "p95": (kind.latency, "p95"),
            "p99": (kind.latency, "p99"),
        }
        counts, quantiles, periods = {}, {}, {}
        for slot, dimensions in dims.items():
            for name, (metric, stat) in metrics.items():
                spec = {
                    "namespace": kind.namespace,
                    "metric": metric,
                    "stat": stat,
                    "dimensions": dimensions,
                }
                (quantiles if name in ("p95", "p99") else counts)[f"{slot}|{name}"] = spec
        found = self._get_timed(counts, start, end, WINDOW)
        try:  # percentiles apart: without them the chart still has its rates
            found.update(self._get_timed(quantiles, start, end, WINDOW))
        except IntegrationError as exc:
            logger.info("live charts of %s: no latency percentiles: %s", self.target, exc.message)
            found.update(dict.fromkeys(quantiles, []))
        for key, points in found.items():
            if key.endswith("|requests"):
                periods.update({t: None for t, _ in points})
        if not periods:
            return None
        latest = max(periods)
        slots = {}
        for slot in dims:
            at = {name: dict(found[f"{slot}|{name}"]).get(latest) for name in metrics}
            total = round(at["requests"] or 0)
            errors = min(total, round(at["5xx"] or 0))
            reading: dict[str, Any] = {
                "requests": {"2xx": total - errors, "5xx": errors},
                "total": total,
            }
            quantiles = {
                q: round(kind.to_ms * at[q], 3)
                for q in ("p95", "p99")
                if at[q] is not None and total
            }
            if quantiles:
                reading["quantiles_ms"] = quantiles
            if (releases or {}).get(slot) and total:
                reading["versions"] = {releases[slot]: total}
            slots[slot] = reading
        return {"time": latest.timestamp() + WINDOW, "window": WINDOW, "slots": slots}

    def begin(self, query: MetricQuery) -> dict[str, Any]:
        return {}  # CloudWatch keeps history

    def fetch(
        self, query: MetricQuery, cursor: dict[str, Any], start: float, end: float
    ) -> dict[str, dict[str, Any]]:
        arms = {"baseline": query.baseline, "canary": query.canary}
        parsed = {name: self._parse(query.query, query, arm) for name, arm in arms.items()}
        if any("alarms" in p for p in parsed.values()):
            values = self._alarms(parsed["canary"].get("alarms") or [])
            return {name: {"values": list(values)} for name in arms}
        if query.mode == "counts":
            if not query.total_query:
                raise IntegrationError("a counts query needs a total_query", permanent=True)
            totals = {
                name: self._parse(query.total_query, query, arm) for name, arm in arms.items()
            }
            period = _period(end - start)
            series = self._get(
                {
                    **{f"{n}_e": p for n, p in parsed.items()},
                    **{f"{n}_t": p for n, p in totals.items()},
                },
                start,
                end,
                period,
            )
            out = {}
            for name in arms:
                total = round(sum(series[f"{name}_t"]))
                errors = min(total, round(sum(series[f"{name}_e"])))
                pairs = [(v, w) for v, w in ((0.0, total - errors), (1.0, errors)) if w > 0]
                out[name] = {
                    "values": [v for v, _ in pairs],
                    "weights": [w for _, w in pairs],
                    "total": total,
                    "errors": errors,
                    "sum": float(errors),
                }
            return out
        period = _period(query.step)
        if query.mode == "instant":
            start = min(start, end - period)
        series = self._get(parsed, start, end, period)
        if query.mode == "instant":
            return {name: {"values": series[name][-1:]} for name in arms}
        return {name: {"values": series[name]} for name in arms}

    # -- reading ------------------------------------------------------------------------------

    def _parse(self, template: str, query: MetricQuery, arm) -> dict[str, Any]:
        values = {
            **query.values,
            "target": query.values.get("target", query.target or self.target),
            "slot": arm.slot,
            "version": arm.version or "",
        }

        def fill(match: re.Match) -> str:
            name = match.group(1)
            if name not in values:
                raise IntegrationError(
                    f"the query uses {{{{{name}}}}}, which has no value here", permanent=True
                )
            return json.dumps(str(values[name]))[1:-1]

        try:
            spec = json.loads(PLACEHOLDER.sub(fill, template))
        except ValueError as exc:
            raise IntegrationError(
                f"a cloudwatch query is JSON ({exc}): see docs/aws.md", permanent=True
            ) from exc
        if not isinstance(spec, dict) or not ("alarms" in spec or "metric" in spec):
            raise IntegrationError(
                'a cloudwatch query is {"namespace", "metric", "dimensions", "stat"} or '
                '{"alarms": [...]}',
                permanent=True,
            )
        if "metric" in spec:
            dims = {}
            for key, value in (spec.get("dimensions") or {}).items():
                if isinstance(value, dict):
                    if arm.slot not in value:
                        raise IntegrationError(
                            f"dimension {key} names no value for slot {arm.slot!r}",
                            permanent=True,
                        )
                    value = value[arm.slot]
                dims[key] = str(value)
            for key, value in dims.items():
                if value == SLOT_VERSION:
                    dims[key] = self._slot_version(dims.get("FunctionName", ""), arm.slot)
            spec["dimensions"] = dims
        return spec

    def _slot_version(self, function: str, slot: str) -> str:
        if self._lambda is None:
            self._lambda = client("lambda", self.options)
        alias = f"switchyard-{slot}"
        with calling("lambda", "GetAlias", f"alias {alias} of function {function}"):
            return self._lambda.get_alias(FunctionName=function, Name=alias)["FunctionVersion"]

    def _get(
        self, specs: dict[str, dict[str, Any]], start: float, end: float, period: int
    ) -> dict[str, list[float]]:
        return {
            name: [v for _, v in points]
            for name, points in self._get_timed(specs, start, end, period).items()
        }

    def _get_timed(
        self, specs: dict[str, dict[str, Any]], start: float, end: float, period: int
    ) -> dict[str, list[tuple[datetime, float]]]:
        ids = {name: f"m{i}" for i, name in enumerate(specs)}
        queries = [
            {
                "Id": ids[name],
                "MetricStat": {
                    "Metric": {
                        "Namespace": spec.get("namespace", ""),
                        "MetricName": spec["metric"],
                        "Dimensions": [
                            {"Name": k, "Value": v} for k, v in spec["dimensions"].items()
                        ],
                    },
                    "Period": period,
                    "Stat": spec.get("stat", "Sum"),
                },
                "ReturnData": True,
            }
            for name, spec in specs.items()
        ]
        found: dict[str, list[tuple[datetime, float]]] = {i: [] for i in ids.values()}
        what = ", ".join(sorted({s["metric"] for s in specs.values()}))
        with calling("monitoring", "GetMetricData", f"metrics {what}"):
            pages = self.cw.get_paginator("get_metric_data").paginate(
                MetricDataQueries=queries,
                StartTime=datetime.fromtimestamp(start, UTC),
                EndTime=datetime.fromtimestamp(end, UTC),
                ScanBy="TimestampAscending",
            )
            for page in pages:
                for result in page.get("MetricDataResults", []):
                    pairs = zip(
                        result.get("Timestamps", []), result.get("Values", []), strict=False
                    )
                    found[result["Id"]].extend(pairs)
        return {
            name: [(t, float(v)) for t, v in sorted(found[ids[name]]) if math.isfinite(v)]
            for name in specs
        }

    def _alarms(self, names: list[str]) -> list[float]:
        if not names:
            return []
        with calling("monitoring", "DescribeAlarms", f"alarms {', '.join(names)}"):
            answer = self.cw.describe_alarms(AlarmNames=list(names))
        states = {
            a["AlarmName"]: a["StateValue"]
            for kind in ("MetricAlarms", "CompositeAlarms")
            for a in answer.get(kind, [])
        }
        missing = [n for n in names if n not in states]
        if missing:
            raise IntegrationError(
                f"AWS cloudwatch:DescribeAlarms: no alarm named {', '.join(missing)}",
                permanent=True,
            )
        return [1.0 if states[n] == "ALARM" else 0.0 for n in names]


def _period(seconds: float) -> int:
    """The CloudWatch period covering ``seconds``: 1, 5, 10, 30 or a multiple of 60."""
    for period in HIGH_RESOLUTION:
        if seconds <= period:
            return period
    return 60 * math.ceil(seconds / 60)


def alb_dimensions(config: dict[str, Any]) -> dict[str, dict[str, str]]:
    """Per slot, the ALB metrics' dimensions of an ``aws-ecs`` target's config: the load
    balancer (from the listener's or rule's ARN) and the slot's target group; {} for a config
    without them."""
    arn = config.get("listener_arn") or config.get("rule_arn") or ""
    match = re.search(r":listener(?:-rule)?/(app/[^/]+/[^/]+)/", arn)
    slots = config.get("slots") or {}
    if not match or not isinstance(slots, dict):
        return {}
    out = {}
    for slot, spec in slots.items():
        group = re.search(r":(targetgroup/[^/]+/[^/]+)$", (spec or {}).get("target_group_arn", ""))
        if group:
            out[slot] = {"LoadBalancer": match.group(1), "TargetGroup": group.group(1)}
    return out


def backend_dimensions(config: dict[str, Any]) -> dict[str, dict[str, str]]:
    """Per slot, the ALB metrics' dimensions of an ``aws-route53`` slot's own backend (its
    ``alb``: ``load_balancer`` and optionally ``target_group``); slots without one are left
    out."""
    out = {}
    for slot, spec in (config.get("slots") or {}).items():
        alb = (spec or {}).get("alb") if isinstance(spec, dict) else None
        if isinstance(alb, dict) and alb.get("load_balancer"):
            dims = {"LoadBalancer": str(alb["load_balancer"])}
            if alb.get("target_group"):
                dims["TargetGroup"] = str(alb["target_group"])
            out[slot] = dims
    return out
