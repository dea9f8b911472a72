"""Canary analysis under injected faults: our judge against a Flagger-style threshold policy.

    .venv/bin/python bench/analysis.py                      # both modes
    .venv/bin/python bench/analysis.py --mode real          # the real local fleet only
    .venv/bin/python bench/analysis.py --mode sim --runs 200

Scenarios (the canary takes 5% of the traffic; faults are the sample app's artifact options):
healthy; error regressions of +1, +5 and +20 percentage points; p99 latency regressions of
+20 ms and +100%; a noisy baseline (both sides fail 3% and jitter); very low traffic (2 req/s).

**real**: a fleet agent on loopback, the stable release on slot ``blue`` and the canary on
``green`` at 95/5, open-loop traffic through the router, and the analysis the reconcile loop
runs -- the same code: ``strategies.analysis.run.advance`` reading the local provider
(``integrations.metrics.local``) -- ticking every 250 ms. A failed verdict rolls back the way
the engine's priority path does first (``LocalTarget.set_weights``: 100% to the old release),
and the clock stops when that call returns. Detection time counts from the moment the canary
takes traffic; "failed user requests" are the canary's non-2xx answers sent before the rollback.

**sim**: the same judge code fed with simulated per-second counters (Poisson arrivals,
binomial errors, a latency model of the sample app in the router's histogram buckets), fast-
forwarded, so hundreds of healthy runs take seconds. The Flagger-style policy (a threshold
check every 60 s -- success rate >= 99% and p99 <= 500 ms over the last minute, "no values" a
failed check as in Flagger -- rolled back after ``--flagger-threshold`` failed checks, promoted
after 5 passed ones) runs on the same simulated traffic; it is too slow to run for real here
(minutes per scenario), which the sim mode exists for.
"""

from __future__ import annotations

import argparse
import bisect
import math
import random
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from integrations.base import Arm, IntegrationError, MetricQuery, ReleaseRef  # noqa: E402
from integrations.metrics.local import BUCKETS_MS, LocalMetrics  # noqa: E402
from strategies.analysis import run as judge  # noqa: E402
from strategies.analysis.series import Series  # noqa: E402
from strategies.analysis.template import normalise  # noqa: E402

TEMPLATE = normalise(
    {
        "metrics": [
            # the always-valid error-rate test, looking every second
            {"name": "errors", "query": "error_rate", "interval": "1s", "count": 30},
            # Kayenta's Mann-Whitney on every request's latency, every 5 s
            {
                "name": "latency",
                "query": "latency",
                "test": "mann_whitney",
                "interval": "5s",
                "count": 6,
                "unit": "ms",
            },
        ]
    }
)
QUERIES = {m["name"]: m["query"] for m in TEMPLATE["metrics"]}
CANARY_SHARE = 5


@dataclass(frozen=True)
class Scenario:
    name: str
    canary: dict
    baseline: dict = field(default_factory=dict)
    rate: float = 100.0
    regression: bool = True


SCENARIOS = [
    Scenario("healthy", {}, regression=False),
    Scenario("errors +1pp", {"error_rate": 0.01}),
    Scenario("errors +5pp", {"error_rate": 0.05}),
    Scenario("errors +20pp", {"error_rate": 0.20}),
    Scenario("p99 +20ms", {"latency_ms": 20}),
    Scenario(
        "p99 +100%",
        {"latency_ms": 40, "latency_jitter_ms": 10},
        {"latency_ms": 20, "latency_jitter_ms": 5},
    ),
    Scenario(
        "noisy baseline",
        {"error_rate": 0.03, "latency_ms": 10, "latency_jitter_ms": 10},
        {"error_rate": 0.03, "latency_ms": 10, "latency_jitter_ms": 10},
        regression=False,
    ),
    Scenario("low traffic", {}, rate=2.0, regression=False),
]


@dataclass
class Outcome:
    decision: str  # fail (rolled back) | pass (promoted) | inconclusive (paused)
    seconds: float  # from the canary taking traffic to the decision (to the rollback call)
    canary_requests: int  # canary requests by then
    failed_requests: int  # the canary's failed user requests before the rollback
    reason: str = ""


# --- the real local fleet ---------------------------------------------------------------------


def run_real(scenario: Scenario, agent, limit: float = 45.0) -> Outcome:
    from integrations.local.target import LocalTarget
    from integrations.local.traffic import Traffic

    key = "bench.analysis"
    health = {"path": "/health", "interval": 0.1, "healthy_threshold": 2}
    target = LocalTarget(key, {}, fleet_url=agent.url, token=agent.token)
    target.set_weights({"blue": 100, "green": 0})
    target.ensure_slot("blue", ReleaseRef("1.0", {"sample": scenario.baseline}, health), 2)
    target.ensure_slot("green", ReleaseRef("2.0", {"sample": scenario.canary}, health), 1)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        slots = target.status().slots
        if slots["blue"].ready == 2 and slots.get("green") and slots["green"].ready == 1:
            break
        time.sleep(0.1)
    source = LocalMetrics(fleet_url=agent.url, token=agent.token, target=key)

    def fetch(metric, action, cursor, start, end):
        query = MetricQuery(QUERIES[metric["name"]], Arm("blue", "1.0"), Arm("green", "2.0"))
        try:
            if action == "begin":
                return {"cursor": source.begin(query)}
            return source.fetch(query, cursor, start, end)
        except IntegrationError as exc:
            return {"error": exc.message, "permanent": exc.permanent}

    with Traffic(target.endpoint, rate=scenario.rate, threads=8) as traffic:
        time.sleep(1.0)
        target.set_weights({"blue": 100 - CANARY_SHARE, "green": CANARY_SHARE})
        began = time.monotonic()
        state, history = judge.new_state(TEMPLATE, time.time()), {}
        verdict = None
        while time.monotonic() - began < limit:
            state, new, verdict = judge.advance(TEMPLATE, state, history, time.time(), fetch)
            for name, _, result in new:
                history.setdefault(name, []).append(result)
            if verdict.decision != "running":
                break
            time.sleep(0.25)
        if verdict.decision == "fail":
            target.set_weights({"blue": 100, "green": 0})  # the priority path's first call
        ended = time.monotonic()
        time.sleep(0.5)
    samples = [s for s in traffic.samples if began <= s.started < ended]
    canary = [s for s in samples if s.version == "2.0"]
    decision = verdict.decision if verdict.decision != "running" else "running"
    return Outcome(
        decision,
        ended - began,
        len(canary),
        sum(1 for s in canary if not s.ok),
        verdict.reason,
    )


# --- the simulation ------------------------------------------------------------------------------

BOUNDS = [float(b) for b in BUCKETS_MS[:-1]]


class Arm_:
    """Cumulative counters of one side, as the router keeps them."""

    def __init__(self) -> None:
        self.total = self.errors = 0
        self.buckets = [0] * (len(BOUNDS) + 1)
        self.sum = 0.0

    def add(self, rng: random.Random, n: int, error_rate: float, latency: dict) -> int:
        errors = sum(rng.random() < error_rate for _ in range(n))
        base, jitter = latency.get("latency_ms", 0), latency.get("latency_jitter_ms", 0)
        for _ in range(n):
            ms = 0.6 + rng.expovariate(1 / 0.8) + max(0.0, base + rng.uniform(-jitter, jitter))
            self.buckets[bisect.bisect_left(BOUNDS, ms)] += 1
            self.sum += ms
        self.total += n
        self.errors += errors
        return errors

    def snapshot(self) -> dict:
        return {
            "total": self.total,
            "errors": self.errors,
            "buckets": list(self.buckets),
            "sum": self.sum,
        }


def _series(name: str, now: dict, then: dict) -> dict:
    total, errors = now["total"] - then["total"], now["errors"] - then["errors"]
    if name == "errors":
        return Series.from_counts(total, errors).to_dict()
    counts = [a - b for a, b in zip(now["buckets"], then["buckets"], strict=True)]
    return {
        "buckets": [[b, c] for b, c in zip(BUCKETS_MS, counts, strict=True)],
        "sum": now["sum"] - then["sum"],
    }


def poisson(rng: random.Random, mean: float) -> int:
    if mean > 30:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def simulate(scenario: Scenario, seed: int, policy: str, flagger_threshold: int = 2) -> Outcome:
    """One canary, fast-forwarded second by second, judged by ``policy`` (ours | flagger)."""
    rng = random.Random(seed)
    base, canary = Arm_(), Arm_()
    share = CANARY_SHARE / 100
    b_err = scenario.baseline.get("error_rate", 0.0)
    c_err = scenario.canary.get("error_rate", 0.0)
    history_per_second = [(base.snapshot(), canary.snapshot())]
    failed = 0
    state, history = judge.new_state(TEMPLATE, 0.0), {}
    checks_failed = checks_passed = 0
    cursor = {}
    for second in range(1, 601):
        noise = rng.uniform(0.5, 1.5) if b_err else 1.0  # a noisy baseline moves both sides
        base.add(
            rng, poisson(rng, scenario.rate * (1 - share)), min(1, b_err * noise), scenario.baseline
        )
        failed += canary.add(
            rng, poisson(rng, scenario.rate * share), min(1, c_err * noise), scenario.canary
        )
        history_per_second.append((base.snapshot(), canary.snapshot()))
        if policy == "ours":

            def fetch(metric, action, cur, start, end, _s=second):
                if action == "begin":
                    cursor[metric["name"]] = history_per_second[_s]
                    return {"cursor": {}}
                b0, c0 = cursor[metric["name"]]
                b1, c1 = history_per_second[_s]
                return {
                    "baseline": _series(metric["name"], b1, b0),
                    "canary": _series(metric["name"], c1, c0),
                }

            state, new, verdict = judge.advance(TEMPLATE, state, history, float(second), fetch)
            for name, _, result in new:
                history.setdefault(name, []).append(result)
            if verdict.decision != "running":
                return Outcome(verdict.decision, second, canary.total, failed, verdict.reason)
        elif second % 60 == 0:
            b0, c0 = history_per_second[second - 60]
            c1 = history_per_second[second][1]
            n, e = c1["total"] - c0["total"], c1["errors"] - c0["errors"]
            latency = Series.from_dict(_series("latency", c1, c0))
            p99 = latency.quantile(0.99) if n else None
            ok = n > 0 and (n - e) / n >= 0.99 and p99 is not None and p99 <= 500
            checks_failed += not ok
            checks_passed += ok
            if checks_failed >= flagger_threshold:
                return Outcome("fail", second, canary.total, failed, "threshold checks failed")
            if checks_passed >= 5:
                return Outcome("pass", second, canary.total, failed, "5 checks passed")
    return Outcome("running", 600, canary.total, failed, "no decision in 10 minutes")


# --- reporting ------------------------------------------------------------------------------------


def summarise(scenario: Scenario, outcomes: list[Outcome]) -> dict:
    fails = [o for o in outcomes if o.decision == "fail"]
    n = len(outcomes)
    row = {
        "runs": n,
        "rolled back": len(fails),
        "promoted": sum(o.decision == "pass" for o in outcomes),
        "paused": sum(o.decision == "inconclusive" for o in outcomes),
    }
    if scenario.regression:
        row["missed"] = n - len(fails)
        if fails:
            row["detect s (median/max)"] = (
                f"{statistics.median(o.seconds for o in fails):.1f}/"
                f"{max(o.seconds for o in fails):.1f}"
            )
            row["detect reqs (median)"] = int(statistics.median(o.canary_requests for o in fails))
            row["failed reqs (median/max)"] = (
                f"{statistics.median(o.failed_requests for o in fails):.0f}/"
                f"{max(o.failed_requests for o in fails)}"
            )
    else:
        row["false rollbacks"] = f"{len(fails)}/{n} ({100 * len(fails) / max(n, 1):.1f}%)"
    return row


def print_table(title: str, rows: list[tuple[str, dict]]) -> None:
    print(f"\n## {title}")
    columns = []
    for _, row in rows:
        columns += [k for k in row if k not in columns]
    print("| scenario | " + " | ".join(columns) + " |")
    print("|" + " --- |" * (len(columns) + 1))
    for name, row in rows:
        print(f"| {name} | " + " | ".join(str(row.get(c, "")) for c in columns) + " |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=("real", "sim", "both"), default="both")
    parser.add_argument("--runs", type=int, default=200, help="simulated runs per scenario")
    parser.add_argument("--real-runs", type=int, default=1, help="real runs per scenario")
    parser.add_argument("--flagger-threshold", type=int, default=2)
    parser.add_argument("--only", default="", help="comma-separated scenario names")
    args = parser.parse_args(argv)
    chosen = [s for s in SCENARIOS if not args.only or s.name in args.only.split(",")]

    if args.mode in ("real", "both"):
        from integrations.local.process import start_agent

        rows = []
        log = ROOT / "var" / "bench" / "analysis-agent.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with start_agent(log_path=log) as agent:
            for scenario in chosen:
                outcomes = [run_real(scenario, agent) for _ in range(args.real_runs)]
                for o in outcomes:
                    print(
                        f"real {scenario.name}: {o.decision} after {o.seconds:.1f}s, "
                        f"{o.canary_requests} canary requests, {o.failed_requests} failed -- "
                        f"{o.reason[:160]}",
                        flush=True,
                    )
                rows.append((scenario.name, summarise(scenario, outcomes)))
        print_table(
            f"real local fleet, our judge ({CANARY_SHARE}% canary, {args.real_runs} run(s))", rows
        )

    if args.mode in ("sim", "both"):
        started = time.monotonic()
        for policy in ("ours", "flagger"):
            rows = []
            for index, scenario in enumerate(chosen):
                outcomes = [
                    simulate(scenario, 1000 * index + seed, policy, args.flagger_threshold)
                    for seed in range(args.runs)
                ]
                rows.append((scenario.name, summarise(scenario, outcomes)))
            title = (
                "simulated, our judge (sequential errors + Mann-Whitney latency)"
                if policy == "ours"
                else f"simulated, Flagger-style (60 s checks, rollback after "
                f"{args.flagger_threshold} failed)"
            )
            print_table(f"{title}, {args.runs} runs per scenario", rows)
        print(f"\n(simulation took {time.monotonic() - started:.1f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
