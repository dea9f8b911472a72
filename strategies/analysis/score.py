"""The score of an analysis, as Kayenta's NetflixACAJudge computes it.

Each metric's latest conclusive result counts in its group: a group scores the share of its
metrics that passed, times 100. The summary is the groups' average weighted by
``judge.groups`` (every group weighs the same when none are given). A critical metric that
failed makes the score 0. The score is classified ``pass`` (>= ``pass_score``, default 95),
``marginal`` (>= ``marginal_score``, default 75) or ``fail``.
"""

from __future__ import annotations

from typing import Any


def score(latest: dict[str, dict[str, Any]], metrics: list[dict], judge: dict) -> dict | None:
    """``latest``: metric name -> its latest result. None when no metric has a verdict."""
    groups: dict[str, list[bool]] = {}
    critical_failures = []
    for metric in metrics:
        result = latest.get(metric["name"])
        if metric["dry_run"] or result is None or result["phase"] not in ("successful", "failed"):
            continue
        passed = result["phase"] == "successful"
        groups.setdefault(metric["group"], []).append(passed)
        if not passed and metric["critical"]:
            critical_failures.append(metric["name"])
    if not groups:
        return None
    weights = judge.get("groups") or {}
    group_scores = {g: 100.0 * sum(v) / len(v) for g, v in groups.items()}
    total_weight = sum(weights.get(g, 1.0 if not weights else 0.0) for g in group_scores)
    if total_weight > 0:
        summary = sum(
            s * weights.get(g, 1.0 if not weights else 0.0) for g, s in group_scores.items()
        )
        summary /= total_weight
    else:
        summary = 0.0
    if critical_failures:
        summary = 0.0
    summary = round(summary, 2)
    if summary >= judge["pass_score"]:
        label = "pass"
    elif summary >= judge["marginal_score"]:
        label = "marginal"
    else:
        label = "fail"
    return {
        "score": summary,
        "classification": label,
        "groups": {g: round(s, 2) for g, s in group_scores.items()},
        "critical_failures": critical_failures,
        "pass_score": judge["pass_score"],
        "marginal_score": judge["marginal_score"],
    }
