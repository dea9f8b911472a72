"""Request counters and latency histograms of the routers, as Prometheus text and as JSON.

Per target there are monotonic totals per slot, which never go away while the target exists (so
windows computed from two readings never go negative), totals per version within a slot (for the
``VERSIONS_KEPT`` newest versions of the slot, and any version a live instance runs), and one
series per instance (kept for the last ``RETIRED_KEPT`` removed instances of the target). So a
target's memory is bounded however many deployments it sees (docs/retention.md).

Latency is counted twice: in the coarse Prometheus buckets (``BUCKETS_MS``, what dashboards and
``histogram_quantile`` expect) and in a log-bucketed sketch in the manner of DDSketch: bucket
``i`` holds the latencies in (``SKETCH_GAMMA``^(i-1), ``SKETCH_GAMMA``^i] ms, so every bucket is
2% wide (a quantile read from it is within 1% of the truth) -- a 10% shift of p99 at 50 ms moves
it across five buckets. Only the buckets that saw a request are stored (a few hundred for
latencies between 0.5 ms and a minute); the JSON (``latency_ms.sketch``) carries them.
"""

from __future__ import annotations

import math
import time
from bisect import bisect_left
from collections import deque
from collections.abc import Iterable
from typing import Any

from integrations.local.darklaunch import DarkStats

BUCKETS_MS = (5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000)
_BOUNDS_S = tuple(ms / 1000 for ms in BUCKETS_MS)
CODE_CLASSES = ("2xx", "3xx", "4xx", "5xx", "error")  # 1xx responses count as 2xx
RETIRED_KEPT = 100
VERSIONS_KEPT = 20  # per slot: the per-version totals of the newest versions it ran
SKETCH_GAMMA = 1.02  # each sketch bucket spans 2%: relative accuracy 1%
SKETCH_MIN_MS = 0.01  # faster than this counts as this (the first bucket)
_LOG_GAMMA = math.log(SKETCH_GAMMA)


def sketch_index(ms: float) -> int:
    """The sketch bucket of a latency in milliseconds: (gamma^(i-1), gamma^i]."""
    return math.ceil(math.log(max(ms, SKETCH_MIN_MS)) / _LOG_GAMMA - 1e-9)


def code_class(status: int) -> str:
    return "5xx" if status >= 500 else "4xx" if status >= 400 else "3xx" if status >= 300 else "2xx"


class Series:
    """Counts by code class and a latency histogram (non-cumulative buckets, last is +Inf)."""

    __slots__ = ("codes", "buckets", "sketch", "sum", "count")

    def __init__(self) -> None:
        self.codes = dict.fromkeys(CODE_CLASSES, 0)
        self.buckets = [0] * (len(_BOUNDS_S) + 1)
        self.sketch: dict[int, int] = {}
        self.sum = 0.0
        self.count = 0

    def observe(self, klass: str, seconds: float) -> None:
        self.codes[klass] += 1
        self.buckets[bisect_left(_BOUNDS_S, seconds)] += 1
        index = sketch_index(seconds * 1000)
        self.sketch[index] = self.sketch.get(index, 0) + 1
        self.sum += seconds
        self.count += 1

    def cumulative(self) -> list[int]:
        total, out = 0, []
        for n in self.buckets:
            total += n
            out.append(total)
        return out

    def as_json(self) -> dict[str, Any]:
        cumulative = self.cumulative()
        labels = [str(ms) for ms in BUCKETS_MS] + ["+Inf"]
        return {
            "requests": dict(self.codes),
            "total": sum(self.codes.values()),
            "latency_ms": {
                "buckets": dict(zip(labels, cumulative, strict=True)),
                "sum": round(self.sum * 1000, 3),
                "count": self.count,
                "sketch": {
                    "gamma": SKETCH_GAMMA,
                    "counts": {str(i): n for i, n in sorted(self.sketch.items())},
                },
            },
        }


class InstanceSeries(Series):
    __slots__ = ("slot", "instance", "version")

    def __init__(self, slot: str, instance: str, version: str) -> None:
        super().__init__()
        self.slot, self.instance, self.version = slot, instance, version


class TargetStats:
    """Everything counted for one target's router."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.slots: dict[str, Series] = {}
        self.slot_versions: dict[tuple[str, str], Series] = {}
        self.instances: dict[str, InstanceSeries] = {}
        self.unrouted = 0  # requests answered 503 because no instance was ready
        self.dark = DarkStats()  # mirrored answers compared with the users' (a dark launch)
        self._retired: deque[str] = deque()

    def for_instance(self, slot: str, instance: str, version: str) -> InstanceSeries:
        series = self.instances.get(instance)
        if series is None:
            series = self.instances[instance] = InstanceSeries(slot, instance, version)
            self.slots.setdefault(slot, Series())
            if (slot, version) not in self.slot_versions:
                self.slot_versions[(slot, version)] = Series()
                self._forget_old_versions(slot)
        return series

    def observe(self, series: InstanceSeries, klass: str, seconds: float) -> None:
        series.observe(klass, seconds)
        self.slots[series.slot].observe(klass, seconds)
        key = (series.slot, series.version)
        by_version = self.slot_versions.get(key)
        if by_version is None:  # a late answer of an instance whose old version was forgotten
            by_version = self.slot_versions[key] = Series()
        by_version.observe(klass, seconds)

    def _forget_old_versions(self, slot: str) -> None:
        """Keep the ``VERSIONS_KEPT`` newest versions' totals of ``slot`` (insertion order is
        age), and every version a live (not retired) instance of the slot runs."""
        versions = [v for (s, v) in self.slot_versions if s == slot]
        if len(versions) <= VERSIONS_KEPT:
            return
        retired = set(self._retired)
        running = {
            series.version
            for name, series in self.instances.items()
            if series.slot == slot and name not in retired
        }
        for version in versions[: len(versions) - VERSIONS_KEPT]:
            if version not in running:
                del self.slot_versions[(slot, version)]

    def retire(self, instance: str) -> None:
        """The instance is gone: keep its series a while, then forget the oldest."""
        if instance in self.instances:
            self._retired.append(instance)
            while len(self._retired) > RETIRED_KEPT:
                self.instances.pop(self._retired.popleft(), None)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(**labels: str) -> str:
    return ",".join(f'{name}="{_escape(str(value))}"' for name, value in labels.items())


def prometheus_text(stats: Iterable[TargetStats], instances: Iterable[Any]) -> str:
    """Prometheus exposition text. ``instances`` are the live ones (``.target_key``, ``.slot``,
    ``.id``, ``.version``, ``.state``, ``.inflight``, ``.restarts``)."""
    stats = list(stats)
    instances = list(instances)
    lines = [
        "# HELP switchyard_router_requests_total Requests the router answered, by code class.",
        "# TYPE switchyard_router_requests_total counter",
    ]
    for ts in stats:
        for s in ts.instances.values():
            base = _labels(target=ts.target, slot=s.slot, instance=s.instance, version=s.version)
            for klass, n in s.codes.items():
                lines.append(f'switchyard_router_requests_total{{{base},code_class="{klass}"}} {n}')
    lines += [
        "# HELP switchyard_router_request_duration_seconds Time to the instance's full answer.",
        "# TYPE switchyard_router_request_duration_seconds histogram",
    ]
    for ts in stats:
        for s in ts.instances.values():
            base = _labels(target=ts.target, slot=s.slot, instance=s.instance, version=s.version)
            name = "switchyard_router_request_duration_seconds"
            for bound, n in zip([*map(str, _BOUNDS_S), "+Inf"], s.cumulative(), strict=True):
                lines.append(f'{name}_bucket{{{base},le="{bound}"}} {n}')
            lines.append(f"{name}_sum{{{base}}} {s.sum:.6f}")
            lines.append(f"{name}_count{{{base}}} {s.count}")
    lines += [
        "# HELP switchyard_router_unrouted_total Requests answered 503: no instance was ready.",
        "# TYPE switchyard_router_unrouted_total counter",
    ]
    for ts in stats:
        base = _labels(target=ts.target)
        lines.append(f"switchyard_router_unrouted_total{{{base}}} {ts.unrouted}")
    gauges = (
        ("switchyard_router_inflight", "gauge", "Requests in flight to the instance.", "inflight"),
        ("switchyard_instance_up", "gauge", "1 when the instance is ready (routable).", None),
        ("switchyard_instance_restarts_total", "counter", "Restarts after crashes.", "restarts"),
    )
    for name, kind, help_text, attr in gauges:
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
        for inst in instances:
            base = _labels(
                target=inst.target_key, slot=inst.slot, instance=inst.id, version=inst.version
            )
            value = getattr(inst, attr) if attr else int(inst.state == "ready")
            lines.append(f"{name}{{{base}}} {value}")
    return "\n".join(lines) + "\n"


def stats_json(ts: TargetStats, instances: Iterable[Any]) -> dict[str, Any]:
    """One target's counters: per slot totals (and per version), and per instance."""
    live = {inst.id: inst for inst in instances}
    slots: dict[str, Any] = {}
    for slot, series in ts.slots.items():
        slots[slot] = {**series.as_json(), "inflight": 0, "versions": {}, "instances": {}}
    for (slot, version), series in ts.slot_versions.items():
        slots[slot]["versions"][version] = series.as_json()
    for inst in live.values():
        slots.setdefault(
            inst.slot, {**Series().as_json(), "inflight": 0, "versions": {}, "instances": {}}
        )
    for name, s in ts.instances.items():
        inst = live.get(name)
        slots[s.slot]["instances"][name] = {
            **s.as_json(),
            "version": s.version,
            "state": inst.state if inst else "stopped",
            "inflight": inst.inflight if inst else 0,
        }
    for inst in live.values():
        slots[inst.slot]["inflight"] += inst.inflight
        if inst.id not in ts.instances:
            slots[inst.slot]["instances"][inst.id] = {
                **Series().as_json(),
                "version": inst.version,
                "state": inst.state,
                "inflight": inst.inflight,
            }
    return {
        "time": time.time(),
        "unrouted": ts.unrouted,
        "slots": slots,
        "dark_launch": ts.dark.as_json(),
    }
