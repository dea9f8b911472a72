"""A whole Argo Rollouts ``Rollout`` manifest, pasted as it is, read as a strategy spec.

``{"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "metadata": {...}, "spec": {...}}``:
we read ``spec.strategy`` (``canary`` or ``blueGreen``, see ``strategies.argo_canary`` and
``strategies.spec_bluegreen``) and, beside it, ``spec.replicas``, ``spec.minReadySeconds``
(-> ``min_ready``), ``spec.progressDeadlineSeconds`` (-> ``progress_deadline``),
``spec.progressDeadlineAbort`` and ``spec.rollbackWindow``. What describes the pods and the
Kubernetes objects (``selector``, ``template``, ``workloadRef``, ``revisionHistoryLimit``, the
analysis history limits, ``metadata``, ``status``) belongs to the target here: accepted and not
used. Errors name the manifest's own paths (``spec.strategy.canary.steps[1].setWeight``).

Here a missed progress deadline always fails the rollout and rolls back (Argo's
``progressDeadlineAbort: true``), and every rollback is fast (a switch back or an all-at-once
rolling update, as Argo's ``rollbackWindow`` makes it for recent revisions), so those two are
accepted as they describe what happens; ``progressDeadlineAbort: false`` is refused.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from strategies.argo import repath
from strategies.fields import FieldError, SpecError, show

API_GROUP = "argoproj.io/"
IGNORED = (
    "selector",
    "template",
    "workloadRef",
    "revisionHistoryLimit",
    "analysis",  # successfulRunHistoryLimit / unsuccessfulRunHistoryLimit: kept runs
    "restartAt",
)
TRANSLATED = {
    "replicas": "replicas",
    "minReadySeconds": "min_ready",
    "progressDeadlineSeconds": "progress_deadline",
}
STRATEGIES = ("canary", "blueGreen")
# every field of a Rollout's spec, for the compatibility page
SPEC_FIELDS = (
    "strategy",
    *TRANSLATED,
    "progressDeadlineAbort",
    "rollbackWindow",
    "paused",
    *IGNORED,
)


def is_manifest(raw: dict[str, Any]) -> bool:
    """Whether ``raw`` is a Kubernetes manifest (a Rollout, or something else pasted by mistake)
    rather than a strategy spec."""
    return isinstance(raw.get("apiVersion"), str) or (
        raw.get("kind") == "Rollout" and isinstance(raw.get("spec"), dict)
    )


def normalise(raw: dict[str, Any], read: Callable[[dict[str, Any]], dict[str, Any]]):
    """The normalised spec of the Rollout manifest ``raw``; ``read`` normalises the strategy
    spec it translates to (``strategies.spec.normalise``). Raises SpecError at the manifest's
    paths."""
    errors: list[FieldError] = []
    if raw.get("kind") != "Rollout" or not str(raw.get("apiVersion", API_GROUP)).startswith(
        API_GROUP
    ):
        got = f"{raw.get('apiVersion', '')} {raw.get('kind', '')}".strip()
        raise SpecError(
            [
                FieldError(
                    "kind",
                    f"a manifest must be an Argo Rollouts Rollout (argoproj.io/v1alpha1 Rollout), "
                    f"got {show(got)}: paste the Rollout, or its spec.strategy",
                )
            ]
        )
    spec = raw.get("spec")
    if not isinstance(spec, dict):
        raise SpecError([FieldError("spec", f"must be an object, got {show(spec)}")])
    inner: dict[str, Any] = {}
    paths: list[tuple[str, str]] = [("kind", "spec.strategy")]
    strategy = spec.get("strategy")
    if not isinstance(strategy, dict):
        errors.append(
            FieldError(
                "spec.strategy",
                f"is required: an object with 'canary' or 'blueGreen', got {show(strategy)}",
            )
        )
    else:
        for key, value in strategy.items():
            if key in STRATEGIES:
                inner[key] = value
                paths.append((key, f"spec.strategy.{key}"))
            elif key == "type":
                errors.append(
                    FieldError(
                        "spec.strategy.type",
                        "is not a field of Argo Rollouts' strategy any more: remove it (the key "
                        "'canary' or 'blueGreen' chooses the strategy)",
                    )
                )
            else:
                errors.append(
                    FieldError(
                        f"spec.strategy.{key}",
                        f"unknown key {show(key)}: a Rollout's strategy is 'canary' or 'blueGreen'",
                    )
                )
    for key, value in spec.items():
        path = f"spec.{key}"
        if key in TRANSLATED:
            inner[TRANSLATED[key]] = value
            paths.append((TRANSLATED[key], path))
            if key == "replicas":
                paths.append(("stable_replicas", path))
        elif key == "progressDeadlineAbort":
            if value is not True:
                errors.append(
                    FieldError(
                        path,
                        "a missed progress deadline always fails the rollout and rolls back here "
                        f"(as true does); got {show(value)}: remove it or set true",
                    )
                )
        elif key == "rollbackWindow":
            revisions = value.get("revisions") if isinstance(value, dict) else None
            if isinstance(revisions, bool) or not isinstance(revisions, int) or revisions < 0:
                errors.append(FieldError(path, f"must be like {{revisions: 3}}, got {show(value)}"))
        elif key == "paused":
            if value is not False:
                errors.append(
                    FieldError(
                        path,
                        "starting paused is not supported: begin the steps with pause: {} to "
                        "wait for a person",
                    )
                )
        elif key not in IGNORED and key != "strategy":
            errors.append(FieldError(path, f"unknown key {show(key)} (not a field of a Rollout)"))
    if errors and not inner:
        raise SpecError(errors)
    try:
        out = read(inner)
    except SpecError as exc:
        errors += repath(exc.errors, paths)
    if errors:
        raise SpecError(errors)
    return out
