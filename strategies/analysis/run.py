"""An analysis run, pure: when each metric is measured, and what the measurements add up to.

The semantics are Argo Rollouts' (AnalysisRun), with a score at the end in Kayenta's manner:

- each metric starts its window ``initial_delay`` after the run starts, and is measured every
  ``interval`` after that, ``count`` times (forever, until the run is stopped, without a count);
- a measurement is ``successful``, ``failed``, ``inconclusive`` (neither condition held, or the
  score was marginal) or ``error`` (the provider failed);
- a critical metric with more than ``failure_limit`` failed measurements fails the run at once;
  more than ``consecutive_error_limit`` errors in a row (or one permanent error) make it
  ``error``; more than ``inconclusive_limit`` inconclusive ones make it ``inconclusive``;
- a measurement below ``min_samples`` is waiting for data, not a verdict: it counts toward
  nothing, unless it is the metric's last (its ``max_count``) -- then the run is inconclusive,
  and says how many samples it saw (no data is never a pass, and never a rollback);
- a sequential or quantile measurement that is *undecided* (the data neither rule out a
  regression larger than the margin nor show one) counts toward nothing either: after its
  ``count`` the metric keeps looking, up to ``max_count`` (its ``max_duration``); undecided at
  its last look, the run is inconclusive and says so (no evidence of harm is never a pass);
- when every metric has taken its ``count`` measurements (or the run is stopped), the latest
  results are scored (``strategies.analysis.score``): pass -> passed, marginal -> inconclusive,
  fail -> failed;
- ``dry_run`` metrics are measured and shown and never change the verdict;
- with ``consecutive_success_limit`` (Argo's ``consecutiveSuccessLimit``) a threshold metric
  succeeds, and stops measuring, once that many measurements in a row succeed; if its ``count``
  runs out first it is ``failed`` when ``failure_limit`` is -1 (only the success limit
  applies) and ``inconclusive`` otherwise (neither limit was reached). A failure limit exceeded
  first still fails it at once;
- the counts that judge a metric are kept in the state (``counts``), so its stored measurements
  may be cut to the latest ``measurement_retention`` (Argo's ``measurementRetention``) without
  changing any verdict: ``history`` holds the latest measurements, not necessarily all.

``advance(template, state, history, now, fetch)`` does one tick: it calls ``fetch`` for whatever
is due (the only I/O, supplied by the caller) and returns the new state, the new results and the
verdict. The caller stores them; nothing here keeps anything between calls.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from strategies.analysis.classify import error_result, measure
from strategies.analysis.score import score

DECISIONS = {
    "running": "running",
    "passed": "pass",
    "failed": "fail",
    "error": "fail",
    "inconclusive": "inconclusive",
}

# fetch(metric, action, cursor, start, end): for "begin" -> the provider's cursor (a dict); for
# "measure" -> {"baseline": series dict, "canary": series dict} or {"error": msg, "permanent": b}
Fetch = Callable[[dict, str, dict | None, float, float], dict]


@dataclass(frozen=True)
class Verdict:
    decision: str  # pass | fail | inconclusive | running
    phase: str  # passed | failed | error | inconclusive | running
    reason: str
    score: dict | None = None
    metrics: dict[str, dict] = field(default_factory=dict)
    next_at: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "decision": self.decision,
            "phase": self.phase,
            "reason": self.reason,
            "score": self.score,
            "metrics": self.metrics,
            "next_at": self.next_at,
        }


def new_state(template: dict, started_at: float) -> dict:
    return {
        "started_at": started_at,
        "metrics": {m["name"]: {"window_start": None, "cursor": None} for m in template["metrics"]},
    }


def due(template: dict, state: dict, history: dict[str, list], now: float) -> list[tuple]:
    """``(metric, "begin" | "measure")`` for every metric with something to do now."""
    out = []
    for metric in template["metrics"]:
        action = _due_action(metric, state, taken(metric, state, history), now)
        if action:
            out.append((metric, action))
    return out


def _limit(metric: dict) -> int | None:
    """How many measurements a metric may take (its ``max_count``; templates normalised before
    margins existed have only ``count``)."""
    return metric.get("max_count", metric["count"])


def taken(metric: dict, state: dict | None, history: dict[str, list]) -> int:
    """How many measurements ``metric`` has taken (its counts; else its history's length)."""
    counts = ((state or {}).get("metrics", {}).get(metric["name"]) or {}).get("counts")
    return counts["taken"] if counts else len(history.get(metric["name"], []))


def _due_action(metric: dict, state: dict, taken: int, now: float) -> str | None:
    if _limit(metric) is not None and taken >= _limit(metric):
        return None
    counts = (state["metrics"].get(metric["name"]) or {}).get("counts")
    if counts and _succeeded(metric, counts):
        return None
    mstate = state["metrics"].setdefault(metric["name"], {"window_start": None, "cursor": None})
    if mstate["window_start"] is None:
        return "begin" if now >= state["started_at"] + metric["initial_delay"] else None
    if now >= mstate["window_start"] + (taken + 1) * metric["interval"]:
        return "measure"
    return None


def next_at(template: dict, state: dict, history: dict[str, list]) -> float | None:
    """When something is next due (None: every metric has taken its count)."""
    times = []
    for metric in template["metrics"]:
        count = taken(metric, state, history)
        if _limit(metric) is not None and count >= _limit(metric):
            continue
        mstate = state["metrics"].get(metric["name"]) or {}
        if mstate.get("counts") and _succeeded(metric, mstate["counts"]):
            continue
        if mstate.get("window_start") is None:
            times.append(state["started_at"] + metric["initial_delay"])
        else:
            times.append(mstate["window_start"] + (count + 1) * metric["interval"])
    return min(times) if times else None


def advance(
    template: dict,
    state: dict,
    history: dict[str, list],
    now: float,
    fetch: Fetch,
    *,
    stopped: bool = False,
) -> tuple[dict, list[tuple[str, int, dict]], Verdict]:
    """One tick. Returns (new state, [(metric name, index, result)] taken now, verdict)."""
    state = {
        **state,
        "metrics": {
            k: {**v, **({"counts": dict(v["counts"])} if v.get("counts") else {})}
            for k, v in state["metrics"].items()
        },
    }
    history = {k: list(v) for k, v in history.items()}
    verdict = evaluate(template, history, state, stopped=stopped)
    if verdict.phase != "running" or stopped:
        return state, [], verdict
    new: list[tuple[str, int, dict]] = []
    for metric, action in due(template, state, history, now):
        mstate = state["metrics"][metric["name"]]
        if action == "begin":
            answer = fetch(metric, "begin", None, now, now)
            if "error" in answer:  # could not even start the window: an error measurement
                result = error_result(metric, answer["error"], permanent=answer.get("permanent"))
                result["at"] = now
                index = _record(mstate, history, metric["name"], result)
                new.append((metric["name"], index, result))
                continue
            mstate["cursor"] = answer.get("cursor")
            mstate["window_start"] = now
            continue
        past = history.setdefault(metric["name"], [])
        mstate.setdefault("counts", tally(past))
        answer = fetch(metric, "measure", mstate["cursor"], mstate["window_start"], now)
        if "error" in answer:
            result = error_result(metric, answer["error"], permanent=answer.get("permanent"))
        else:
            previous = next((r for r in reversed(past) if r.get("state")), None)
            result = measure(metric, answer["baseline"], answer["canary"], previous)
        result["at"] = now
        result["window"] = [mstate["window_start"], now]
        new.append((metric["name"], _record(mstate, history, metric["name"], result), result))
    verdict = evaluate(template, history, state, stopped=stopped)
    return state, new, verdict


def tally(results: list[dict]) -> dict:
    """The counts of ``results`` (a metric's measurements, oldest first)."""
    counts = {
        "taken": 0,
        "successful": 0,
        "failed": 0,
        "inconclusive": 0,
        "errors": 0,
        "consecutive_errors": 0,
        "consecutive_successes": 0,
        "permanent_error": False,
        "last_failed_why": "",
        "last_inconclusive_why": "",
    }
    for result in results:
        _count(counts, result)
    return counts


def _count(counts: dict, result: dict) -> None:
    phase = result["phase"]
    counts["taken"] += 1
    counts["consecutive_errors"] = counts["consecutive_errors"] + 1 if phase == "error" else 0
    waiting = result.get("insufficient") or result.get("undecided")
    if phase == "successful":
        counts["successful"] += 1
        counts["consecutive_successes"] += 1
    else:
        counts["consecutive_successes"] = 0
    if phase == "error":
        counts["errors"] += 1
        counts["permanent_error"] = counts["permanent_error"] or bool(result.get("permanent"))
    elif phase == "failed":
        counts["failed"] += 1
        counts["last_failed_why"] = result.get("why", "")
    elif phase == "inconclusive" and not waiting:
        counts["inconclusive"] += 1
        counts["last_inconclusive_why"] = result.get("why", "")


def _record(mstate: dict, history: dict[str, list], name: str, result: dict) -> int:
    """Add ``result`` to the metric's counts and history; its index."""
    past = history.setdefault(name, [])
    counts = mstate.setdefault("counts", tally(past))
    index = counts["taken"]
    _count(counts, result)
    past.append(result)
    return index


def _succeeded(metric: dict, counts: dict) -> bool:
    limit = metric.get("consecutive_success_limit") or 0
    return bool(limit) and counts["consecutive_successes"] >= limit


def evaluate(
    template: dict, history: dict[str, list], state: dict | None = None, *, stopped: bool = False
) -> Verdict:
    """The run's verdict from its measurements so far."""
    summaries: dict[str, dict] = {}
    failed = error = inconclusive = None
    all_done = True
    for metric in template["metrics"]:
        results = history.get(metric["name"], [])
        counts = ((state or {}).get("metrics", {}).get(metric["name"]) or {}).get("counts")
        summary = _summary(metric, results, counts)
        summaries[metric["name"]] = summary
        if not summary["done"]:
            all_done = False
        if metric["dry_run"]:
            continue
        name = metric["name"]
        if (
            summary["permanent_error"]
            or summary["consecutive_errors"] > metric["consecutive_error_limit"]
        ):
            error = error or f"{name}: the measurement failed: {summary['last_why']}"
        elif (
            metric["critical"]
            and metric["failure_limit"] >= 0
            and summary["failed"] > metric["failure_limit"]
        ):
            failed = failed or f"{name}: {summary['last_failed_why']}"
        elif summary["inconclusive"] > metric["inconclusive_limit"]:
            inconclusive = inconclusive or f"{name}: {summary['last_inconclusive_why']}"
        elif summary["succeeded"] is False:
            limit = metric["consecutive_success_limit"]
            why = (
                f"{name}: {summary['measurements']} measurements without {limit} successful "
                f"in a row (consecutive_success_limit)"
            )
            if metric["failure_limit"] < 0:
                failed = failed or why
            else:
                inconclusive = inconclusive or why + ", and the failure limit was not reached"
    nxt = next_at(template, state, history) if state else None
    if error:
        return Verdict("fail", "error", error, None, summaries)
    if failed:
        return Verdict("fail", "failed", failed, None, summaries)
    if inconclusive:
        return Verdict("inconclusive", "inconclusive", inconclusive, None, summaries)
    if not (all_done or stopped):
        return Verdict("running", "running", _progress(template, summaries), None, summaries, nxt)

    latest, waiting = {}, []
    for metric in template["metrics"]:
        if metric["dry_run"]:
            continue
        results = [r for r in history.get(metric["name"], []) if r["phase"] != "error"]
        if not results or results[-1].get("insufficient"):
            why = results[-1]["why"] if results else "no measurement was taken."
            waiting.append(f"{metric['name']}: {why}")
            continue
        if results[-1].get("undecided"):
            looks = taken(metric, state, history)
            limit = "when the analysis was stopped" if stopped else "at its maximum duration"
            waiting.append(
                f"{metric['name']}: inconclusive {limit} ({looks} looks): {results[-1]['why']}"
            )
            continue
        latest[metric["name"]] = results[-1]
    if waiting:
        return Verdict("inconclusive", "inconclusive", " ".join(waiting), None, summaries)
    judged = score(latest, template["metrics"], template["judge"])
    if judged is None:
        return Verdict("pass", "passed", "Only dry-run metrics: nothing to judge.", None, summaries)
    failing = [n for n, r in latest.items() if r["phase"] == "failed"]
    because = (
        " Failing: " + "; ".join(f"{n}: {latest[n]['why']}" for n in failing) if failing else ""
    )
    headline = f"Score {judged['score']:g}"
    if judged["classification"] == "pass":
        return Verdict(
            "pass",
            "passed",
            f"{headline} >= {judged['pass_score']:g}: the canary is as good as the baseline."
            + because,
            judged,
            summaries,
        )
    if judged["classification"] == "marginal":
        return Verdict(
            "inconclusive",
            "inconclusive",
            f"{headline} is marginal (between {judged['marginal_score']:g} and "
            f"{judged['pass_score']:g}): a person should decide." + because,
            judged,
            summaries,
        )
    return Verdict(
        "fail",
        "failed",
        f"{headline} < {judged['marginal_score']:g}." + because,
        judged,
        summaries,
    )


def _summary(metric: dict, results: list[dict], counts: dict | None = None) -> dict:
    """Where ``metric`` stands: its ``counts`` (from the state; else tallied from ``results``,
    which are then every measurement) and its latest ``results``."""
    counts = counts or tally(results)
    taken = counts["taken"]
    last = results[-1] if results else None
    judged = [r for r in results if r["phase"] != "error"]
    # undecided or still waiting for data: a metric that may look longer is not done
    undecided = bool(judged) and bool(judged[-1].get("undecided") or judged[-1].get("insufficient"))
    limit = _limit(metric)
    done = metric["count"] is not None and taken >= metric["count"]
    if done and undecided and limit is not None and taken < limit:
        done = False  # undecided: keep looking, up to max_count
    # consecutive_success_limit: True once reached, False when the count ran out first
    succeeded = None
    if metric.get("consecutive_success_limit"):
        if _succeeded(metric, counts):
            succeeded, done = True, True
        elif done:
            succeeded = False
    return {
        "measurements": taken,
        "count": metric["count"],
        "max_count": limit,
        "done": done,
        "failed": counts["failed"],
        "inconclusive": counts["inconclusive"],
        "errors": counts["errors"],
        "consecutive_errors": counts["consecutive_errors"],
        "consecutive_successes": counts["consecutive_successes"],
        "succeeded": succeeded,
        "permanent_error": counts["permanent_error"],
        "last_phase": last["phase"] if last else None,
        "last_why": last["why"] if last else "",
        "last_failed_why": counts["last_failed_why"],
        "last_inconclusive_why": counts["last_inconclusive_why"],
        "dry_run": metric["dry_run"],
    }


def _progress(template: dict, summaries: dict[str, dict]) -> str:
    parts = []
    for metric in template["metrics"]:
        s = summaries[metric["name"]]
        of = f"/{s['count']}" if s["count"] is not None else ""
        last = f" ({s['last_phase']})" if s["last_phase"] else ""
        parts.append(f"{metric['name']} {s['measurements']}{of}{last}")
    return "Measuring: " + ", ".join(parts) + "."
