"""Flagger's ``Canary`` (``apiVersion: flagger.app/v1beta1``, ``kind: Canary``), pasted as it is,
translated into our ``canary`` spec; errors name the manifest's own paths
(``spec.analysis.stepWeight``) and, where our reader finds the problem, say what ours says.

Flagger's analysis runs a loop: every ``interval`` it checks the metrics and moves traffic on. Ours:

- progressive traffic shifting (``stepWeight`` up to ``maxWeight``, or ``stepWeights``): a
  ``set_weight`` step per weight, each followed by a ``pause`` of ``interval``; then promotion;
- with ``iterations``, the new release first runs at full size beside the old one
  (``set_canary_scale: {weight: 100}``), as Flagger scales its canary Deployment up;
- A/B testing (``iterations`` with ``match``): one ``set_header_route`` per match (Flagger ORs its
  matches, ours ANDs the headers within one route), then a pause of ``iterations`` x ``interval``;
  a cookie match is Flagger's ``cookie`` header regex and is kept as one;
- blue/green mirroring (``iterations`` with ``mirror: true``): a ``set_mirror_route`` copying
  ``mirrorWeight``% (default 100) of the requests to the new release, then the pause;
- blue/green (``iterations`` alone): the new release with no traffic for the pause, then the
  switch;
- the built-in metrics ``request-success-rate`` (``thresholdRange.min``, a percentage) and
  ``request-duration`` (``thresholdRange.max``, the p99 in milliseconds) become a background
  analysis of the built-in template ``request-metrics`` (``BUILTIN_TEMPLATE``, which
  ``releases.analysis.templates`` stores the first time a run needs it) with arguments
  ``max-error-rate`` and ``max-duration``;
  a metric with ``templateRef`` runs that Flagger ``MetricTemplate`` (stored with ``POST
  /analysis-templates``, ``strategies.analysis.flagger_template``) beside them, with its
  ``thresholdRange`` as arguments ``min`` / ``max``, its ``interval`` as ``metric-interval``,
  its ``templateVariables`` as ``variables.NAME`` and the Canary's namespace (``per_template``
  of the reference: each template its own arguments);
  ``threshold`` (the failed checks that roll back) becomes the analysis' ``failure_limit``
  (``threshold - 1`` failures tolerated, per metric) and ``interval`` its metrics' interval;
- webhooks of type ``confirm-rollout`` / ``confirm-promotion`` (Flagger's manual gates, opened
  by the load tester's ``/gate/open``) become ``pause: {}`` steps before the first step / before
  promotion: they wait for a person to promote (the URL is not called).
- the other webhooks are called with Flagger's payload (``integrations.metrics.webhook``):
  ``rollout`` ones (load tests too) every interval by the background analysis (the built-in
  template ``flagger-rollout-hooks``: a failure counts toward ``threshold``), ``rollback`` ones
  likewise (``flagger-rollback-hooks``: a 2xx fails it at once), ``pre-rollout`` ones as an
  analysis step before any traffic moves (``flagger-pre-rollout-hooks``: passes at the first
  2xx, fails at the threshold-th failure); ``event`` and ``post-rollout`` ones go to the spec's
  ``webhooks``, which the notifications worker calls (``notifications.webhooks``).

What only describes Kubernetes objects (``targetRef``, ``service``, ``autoscalerRef``...) is
ignored; the rest is refused naming the key and what to do instead (``UNSUPPORTED``). Pure.
"""

from __future__ import annotations

import json
import re
from typing import Any

from strategies.fields import FieldError, show
from strategies.fields import duration as duration_of
from strategies.spec_analysis import TEMPLATE_NAME

API_GROUP = "flagger.app/"
BUILTIN_TEMPLATE = "request-metrics"
BUILTIN_METRICS = {"request-success-rate": "min", "request-duration": "max"}
DEFAULT_INTERVAL = 60.0
SPEC_IGNORED = (
    "targetRef",
    "autoscalerRef",
    "ingressRef",
    "upstreamRef",
    "routeRef",
    "service",
    "provider",
    "revertOnDeletion",
)
SPEC_UNSUPPORTED = {
    "suspend": "is not supported: a deployment here starts when it is created; pause it instead",
    "skipAnalysis": (
        "true is not supported: a canary here is always analysed; use kind 'rolling' to "
        "replace instances without analysis (false is what happens here)"
    ),
}
# every field of a Canary's spec, for the compatibility page
SPEC_FIELDS = (
    "analysis",
    "canaryAnalysis",
    "progressDeadlineSeconds",
    *SPEC_IGNORED,
    *SPEC_UNSUPPORTED,
)
ANALYSIS_TRANSLATED = (
    "interval",
    "threshold",
    "maxWeight",
    "stepWeight",
    "stepWeights",
    "iterations",
    "match",
    "mirror",
    "mirrorWeight",
    "metrics",
    "webhooks",
)
ANALYSIS_UNSUPPORTED = {
    "stepWeightPromotion": (
        "is not supported: the promotion moves all traffic at once here; remove it"
    ),
    "alerts": (
        "is not supported: send notifications with a notification rule (docs/notifications.md)"
    ),
    "primaryReadyThreshold": (
        "is not supported: a step waits for every instance it asks for; remove it"
    ),
    "canaryReadyThreshold": (
        "is not supported: a step waits for every instance it asks for; remove it"
    ),
    "sessionAffinity": (
        "is not supported: use a header 'match' (A/B testing) to keep users on the new release"
    ),
}
ANALYSIS_FIELDS = (*ANALYSIS_TRANSLATED, *ANALYSIS_UNSUPPORTED)
WEBHOOK_GATES = {"confirm-rollout": "first", "confirm-promotion": "last"}
# called by the analysis (a built-in template each): Flagger's phase in their payload
HOOK_PHASES = {"rollout": "Progressing", "pre-rollout": "Progressing", "rollback": "Progressing"}
WEBHOOK_CALLED = tuple(HOOK_PHASES)
# told about the deployment by the notifications worker (notifications.webhooks)
WEBHOOK_TOLD = ("post-rollout", "event")
WEBHOOK_LATER = {
    "confirm-traffic-increase": "confirm-traffic-increase webhooks are not supported yet: add "
    "pause: {} steps to an Argo-style canary",
}
WEBHOOK_TYPES = (*WEBHOOK_GATES, *WEBHOOK_CALLED, *WEBHOOK_TOLD, *WEBHOOK_LATER)
HOOK_KEYS = ("name", "type", "url", "timeout", "metadata", "muteAlert")
MAX_HOOK_TIMEOUT = 60.0
ROLLOUT_TEMPLATE = "flagger-rollout-hooks"
ROLLBACK_TEMPLATE = "flagger-rollback-hooks"
PRE_ROLLOUT_TEMPLATE = "flagger-pre-rollout-hooks"
METRIC_KEYS = (
    "name",
    "thresholdRange",
    "threshold",
    "interval",
    "templateRef",
    "templateVariables",
)
MATCH_KINDS = ("exact", "prefix", "regex")
PROM_DURATION = re.compile(r"(\d+(ms|s|m|h|d|w|y))+")


def is_manifest(raw: dict[str, Any]) -> bool:
    return str(raw.get("apiVersion", "")).startswith(API_GROUP) or raw.get("kind") == "Canary"


def translate(
    raw: dict[str, Any], errors: list[FieldError]
) -> tuple[dict[str, Any], list[tuple[str, str]]] | None:
    """Our raw canary spec for the Flagger manifest ``raw`` (its problems added to ``errors``
    at the manifest's paths) and where each of its parts came from (``strategies.argo.repath``);
    None when there is nothing to read."""
    if raw.get("kind") != "Canary":
        errors.append(
            FieldError(
                "kind",
                f"a Flagger manifest must be a Canary (flagger.app/v1beta1 Canary), got "
                f"{show(raw.get('kind'))}",
            )
        )
        return None
    spec = raw.get("spec")
    if not isinstance(spec, dict):
        errors.append(FieldError("spec", f"must be an object, got {show(spec)}"))
        return None
    out: dict[str, Any] = {"kind": "canary"}
    analysis: Any = None
    where = "spec.analysis"
    for key, value in spec.items():
        path = f"spec.{key}"
        if key in ("analysis", "canaryAnalysis"):
            if analysis is not None:
                errors.append(FieldError(path, "is given twice: keep 'analysis' (its new name)"))
            analysis, where = value, path
        elif key == "progressDeadlineSeconds":
            out["progress_deadline"] = value
        elif key == "skipAnalysis" and value is False:
            continue
        elif key in SPEC_UNSUPPORTED:
            errors.append(FieldError(path, SPEC_UNSUPPORTED[key]))
        elif key not in SPEC_IGNORED:
            errors.append(FieldError(path, f"unknown key {show(key)} (not a field of a Canary)"))
    if not isinstance(analysis, dict):
        errors.append(
            FieldError(
                where,
                f"is required: an object with interval and stepWeight or "
                f"iterations, got {show(analysis)}",
            )
        )
        return None
    paths: list[tuple[str, str]] = []
    meta = raw.get("metadata") if isinstance(raw.get("metadata"), dict) else {}
    ingress = spec.get("ingressRef") if isinstance(spec.get("ingressRef"), dict) else {}
    context = {
        "name": str(meta.get("name") or ""),
        "namespace": str(meta.get("namespace") or "default"),
        "ingress": str(ingress.get("name") or ""),
    }
    _analysis(analysis, where, out, errors, paths, context)
    paths += [
        ("steps", where),
        ("analysis.failure_limit", f"{where}.threshold"),
        ("analysis.interval", f"{where}.interval"),
        ("analysis", f"{where}.metrics"),
        ("progress_deadline", "spec.progressDeadlineSeconds"),
    ]
    return out, paths


def _analysis(
    a: dict[str, Any],
    at: str,
    out: dict[str, Any],
    errors: list[FieldError],
    paths: list[tuple[str, str]],
    context: dict[str, str],
) -> None:
    for key in a:
        if key in ANALYSIS_UNSUPPORTED:
            errors.append(FieldError(f"{at}.{key}", ANALYSIS_UNSUPPORTED[key]))
        elif key not in ANALYSIS_TRANSLATED:
            errors.append(
                FieldError(
                    f"{at}.{key}",
                    f"unknown key {show(key)} (not a field of Flagger's analysis either)",
                )
            )
    interval = _interval(a.get("interval", "1m"), f"{at}.interval", errors)
    weights = _weights(a, at, errors)
    iterations = a.get("iterations")
    if iterations is not None and (
        isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 1
    ):
        errors.append(
            FieldError(f"{at}.iterations", f"must be a whole number >= 1, got {show(iterations)}")
        )
        iterations = None
    match, mirror = a.get("match"), a.get("mirror", False)
    if weights and iterations is not None:
        errors.append(
            FieldError(
                f"{at}.iterations",
                "give iterations (A/B testing, blue/green) or "
                "stepWeight/stepWeights (canary), not both",
            )
        )
    if not ({"stepWeight", "stepWeights", "iterations"} & set(a)):
        errors.append(
            FieldError(at, "needs stepWeight (with maxWeight), stepWeights, or iterations")
        )
    if match is not None and mirror is True:
        errors.append(FieldError(f"{at}.mirror", "give match (A/B testing) or mirror, not both"))
    if mirror not in (True, False):
        errors.append(FieldError(f"{at}.mirror", f"must be true or false, got {show(mirror)}"))
    if "mirrorWeight" in a and mirror is not True:
        errors.append(FieldError(f"{at}.mirrorWeight", "applies only with mirror: true"))
    gates, hooks = _webhooks(a.get("webhooks"), f"{at}.webhooks", errors, context)
    threshold = a.get("threshold", 1)
    if isinstance(threshold, bool) or not isinstance(threshold, int) or threshold < 1:
        errors.append(
            FieldError(
                f"{at}.threshold",
                f"must be a whole number >= 1 (the failed checks "
                f"that roll back), got {show(threshold)}",
            )
        )
        threshold = None
    steps: list[dict[str, Any]] = []
    if "first" in gates:
        steps.append({"pause": {}})
    if hooks.get("pre-rollout"):  # before any traffic moves: retried each interval
        gate: dict[str, Any] = {
            "template": PRE_ROLLOUT_TEMPLATE,
            "args": _hook_args(hooks, "pre-rollout"),
        }
        if threshold is not None:
            gate["failure_limit"] = threshold - 1
        if interval is not None:
            gate["interval"] = interval
        paths.append((f"steps[{len(steps)}]", f"{at}.webhooks"))
        steps.append({"analysis": gate})
    first_step = len(steps)  # the background analysis starts once the pre-rollout hooks pass
    if iterations is not None and not weights:  # Flagger runs the new release at full size
        steps.append({"set_canary_scale": {"weight": 100}})
    if mirror is True:
        paths.append((f"steps[{len(steps)}].set_mirror_route.percentage", f"{at}.mirrorWeight"))
        steps.append(
            {
                "set_mirror_route": {
                    "name": "flagger-mirror",
                    "percentage": a.get("mirrorWeight", 100),
                    "match": [{}],
                }
            }
        )
    if match is not None:
        for index, route, names in _header_routes(match, f"{at}.match", errors):
            for k, name in enumerate(names):
                ours = f"steps[{len(steps)}].set_header_route.match[{k}]"
                for part in (".header", ".value", ""):
                    paths.append((ours + part, f"{at}.match[{index}].headers.{name}"))
            steps.append(route)
    key = "stepWeights" if "stepWeights" in a else "stepWeight"
    for index, weight in enumerate(weights):
        theirs = f"{at}.stepWeights[{index}]" if key == "stepWeights" else f"{at}.{key}"
        paths.append((f"steps[{len(steps)}]", theirs))
        paths.append((f"steps[{len(steps) + 1}]", f"{at}.interval"))
        steps += [{"set_weight": weight}, {"pause": {"duration": interval}}]
    if iterations is not None and interval is not None:
        paths.append((f"steps[{len(steps)}]", f"{at}.iterations"))
        steps.append({"pause": {"duration": iterations * interval}})
    if "last" in gates:
        steps.append({"pause": {}})
    out["steps"] = steps
    told = [{"type": k, **h} for k in WEBHOOK_TOLD for h in hooks.get(k, [])]
    if told:
        out["webhooks"] = told
    background = _with_hooks(_metrics(a.get("metrics"), f"{at}.metrics", errors, context), hooks)
    if threshold is not None and background is not None:
        background["failure_limit"] = threshold - 1
    if background is not None and interval is not None:
        background["interval"] = interval
    if background is not None and hooks.get("pre-rollout"):
        background["start_at_step"] = first_step
    if background is not None:
        out["analysis"] = background


def _interval(value: Any, path: str, errors: list[FieldError]) -> float | None:
    try:
        return duration_of(positive=True)(value)
    except ValueError as exc:
        errors.append(FieldError(path, str(exc)))
        return None


def _percent(value: Any, path: str, errors: list[FieldError], low: int = 1) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= 100:
        errors.append(
            FieldError(path, f"must be a whole number between {low} and 100, got {show(value)}")
        )
        return None
    return value


def _weights(a: dict[str, Any], at: str, errors: list[FieldError]) -> list[int]:
    """The weights the canary goes through, in order (Flagger: stepWeight, 2 x stepWeight, ...
    up to maxWeight (default 100); or the list stepWeights)."""
    if "stepWeight" in a and "stepWeights" in a:
        errors.append(FieldError(f"{at}.stepWeights", "give stepWeight or stepWeights, not both"))
        return []
    if "stepWeights" in a:
        raw = a["stepWeights"]
        if not isinstance(raw, list) or not raw:
            errors.append(
                FieldError(f"{at}.stepWeights", f"must be a list like [1, 10, 50], got {show(raw)}")
            )
            return []
        out = [_percent(w, f"{at}.stepWeights[{i}]", errors) for i, w in enumerate(raw)]
        if None in out:
            return []
        if any(b <= a for a, b in zip(out, out[1:], strict=False)):
            errors.append(FieldError(f"{at}.stepWeights", f"must increase, got {show(raw)}"))
            return []
        if "maxWeight" in a:
            errors.append(FieldError(f"{at}.maxWeight", "applies only with stepWeight"))
        return out  # type: ignore[return-value]
    if "stepWeight" not in a:
        if "maxWeight" in a:
            errors.append(FieldError(f"{at}.maxWeight", "applies only with stepWeight"))
        return []
    step = _percent(a["stepWeight"], f"{at}.stepWeight", errors)
    top = _percent(a.get("maxWeight", 100), f"{at}.maxWeight", errors)
    if step is None or top is None:
        return []
    if step > top:
        errors.append(FieldError(f"{at}.stepWeight", f"is above maxWeight ({top}), got {step}"))
        return []
    return list(range(step, top + 1, step))


def _header_routes(match: Any, at: str, errors: list[FieldError]) -> list[tuple[int, Any, list]]:
    """(index in ``match``, our ``set_header_route`` step, the header names in its order)."""
    if not isinstance(match, list) or not match:
        errors.append(
            FieldError(
                at,
                f"must be a list like [{{headers: {{x-canary: {{exact: insider}}}}}}],"
                f" got {show(match)}",
            )
        )
        return []
    steps = []
    for index, rule in enumerate(match):
        where = f"{at}[{index}]"
        headers = rule.get("headers") if isinstance(rule, dict) else None
        if not isinstance(headers, dict) or not headers:
            errors.append(
                FieldError(
                    f"{where}.headers",
                    f"is required: header name -> {{exact|prefix|"
                    f"regex: value}}, got {show(headers)}",
                )
            )
            continue
        for key in rule:
            if key != "headers":
                errors.append(
                    FieldError(
                        f"{where}.{key}",
                        "only header (and cookie header) matches are supported: match on 'headers'",
                    )
                )
        matches, names = [], []
        for name, value in headers.items():
            kinds = value if isinstance(value, dict) else {}
            given = [k for k in MATCH_KINDS if k in kinds]
            if len(given) != 1 or len(kinds) != 1:
                names = ", ".join(MATCH_KINDS)
                errors.append(
                    FieldError(
                        f"{where}.headers.{name}",
                        f"must be an object with one of {names}, got {show(value)}",
                    )
                )
                continue
            matches.append({"header": name, "value": {given[0]: kinds[given[0]]}})
            names.append(name)
        route = "flagger-ab" if len(match) == 1 else f"flagger-ab-{index + 1}"
        steps.append((index, {"set_header_route": {"name": route, "match": matches}}, names))
    return steps


def _webhooks(
    value: Any, at: str, errors: list[FieldError], context: dict[str, str]
) -> tuple[set[str], dict[str, list[dict[str, Any]]]]:
    """(the manual gates: "first" / "last", the other hooks by type, each ``{"name", "url",
    "timeout", "metadata", "canary", "namespace"}``)."""
    hooks: dict[str, list[dict[str, Any]]] = {}
    if value is None:
        return set(), hooks
    if not isinstance(value, list):
        errors.append(FieldError(at, f"must be a list of webhooks, got {show(value)}"))
        return set(), hooks
    gates = set()
    for index, hook in enumerate(value):
        where = f"{at}[{index}]"
        if not isinstance(hook, dict):
            errors.append(FieldError(where, f"must be an object, got {show(hook)}"))
            continue
        kind = hook.get("type", "rollout")
        if kind in WEBHOOK_GATES:
            gates.add(WEBHOOK_GATES[kind])
        elif kind in WEBHOOK_CALLED or kind in WEBHOOK_TOLD:
            read = _hook(hook, where, errors, context)
            if read is not None:
                hooks.setdefault(kind, []).append(read)
        elif kind in WEBHOOK_LATER:
            errors.append(FieldError(f"{where}.type", WEBHOOK_LATER[kind]))
        else:
            names = ", ".join(WEBHOOK_TYPES)
            errors.append(
                FieldError(f"{where}.type", f"unknown webhook type {show(kind)}: one of {names}")
            )
    return gates, hooks


def _hook(
    hook: dict[str, Any], where: str, errors: list[FieldError], context: dict[str, str]
) -> dict[str, Any] | None:
    before = len(errors)
    for key in hook:
        if key not in HOOK_KEYS:
            errors.append(FieldError(f"{where}.{key}", f"unknown key {show(key)}"))
    url = hook.get("url")
    if not isinstance(url, str) or not re.match(r"https?://[^/\s]+", url):
        errors.append(
            FieldError(f"{where}.url", f"must be an http:// or https:// URL, got {show(url)}")
        )
    timeout = _interval(hook.get("timeout", "10s"), f"{where}.timeout", errors)
    if timeout is not None and timeout > MAX_HOOK_TIMEOUT:
        errors.append(
            FieldError(
                f"{where}.timeout", f"must be at most {MAX_HOOK_TIMEOUT:g}s (a call holds a tick)"
            )
        )
    metadata = hook.get("metadata", {})
    if not isinstance(metadata, dict) or not all(
        isinstance(v, str | int | float) and not isinstance(v, bool) for v in metadata.values()
    ):
        errors.append(
            FieldError(
                f"{where}.metadata", f"must be an object of name -> text, got {show(metadata)}"
            )
        )
    if len(errors) > before:
        return None
    return {
        "name": str(hook.get("name") or hook.get("type") or "rollout"),
        "url": url,
        "timeout": timeout,
        "metadata": {str(k): str(v) for k, v in metadata.items()},
        "canary": context["name"],
        "namespace": context["namespace"],
    }


def _hook_args(hooks: dict[str, list[dict[str, Any]]], kind: str) -> dict[str, str]:
    """The arguments of the built-in template that calls the ``kind`` hooks."""
    return {"hooks": json.dumps(hooks[kind], sort_keys=True), "phase": HOOK_PHASES[kind]}


def _with_hooks(
    ref: dict[str, Any] | None, hooks: dict[str, list[dict[str, Any]]]
) -> dict[str, Any] | None:
    """The background analysis with the rollout and rollback hooks' templates added (each its
    own arguments; a rollback hook's 2xx rolls back at once, whatever the threshold)."""
    parts = {}
    if hooks.get("rollout"):
        parts[ROLLOUT_TEMPLATE] = {"args": _hook_args(hooks, "rollout")}
    if hooks.get("rollback"):
        parts[ROLLBACK_TEMPLATE] = {"args": _hook_args(hooks, "rollback"), "failure_limit": 0}
    if not parts:
        return ref
    if ref is None:
        names, per = [], {}
    elif "per_template" in ref:
        names, per = list(ref.get("templates") or [ref["template"]]), dict(ref["per_template"])
    else:
        names, per = [ref["template"]], {ref["template"]: {"args": ref["args"]}}
    names += list(parts)
    per.update(parts)
    if len(names) == 1:
        return {"template": names[0], "args": {}, "per_template": per}
    return {"templates": names, "args": {}, "per_template": per}


def _metrics(
    value: Any, at: str, errors: list[FieldError], context: dict[str, str]
) -> dict[str, Any] | None:
    """The background analysis for Flagger's metrics, None if it has none: the built-in ones
    as the template ``request-metrics``, each ``templateRef`` as its MetricTemplate (stored
    through ``POST /analysis-templates``, ``strategies.analysis.flagger_template``) with its
    own thresholds and variables (``per_template``)."""
    if value is None or value == []:
        return None
    if not isinstance(value, list):
        errors.append(FieldError(at, f"must be a list of metrics, got {show(value)}"))
        return None
    args: dict[str, str] = {}
    custom: dict[str, dict[str, str]] = {}
    for index, metric in enumerate(value):
        where = f"{at}[{index}]"
        if not isinstance(metric, dict):
            errors.append(FieldError(where, f"must be an object, got {show(metric)}"))
            continue
        name = metric.get("name")
        for key in metric:
            if key not in METRIC_KEYS:
                errors.append(FieldError(f"{where}.{key}", f"unknown key {show(key)}"))
        if "templateRef" in metric:
            found = _template_ref(metric, where, errors, context)
            if found is not None and found[0] in custom:
                errors.append(
                    FieldError(
                        f"{where}.templateRef.name",
                        f"{found[0]!r} is used by another metric too: one metric per template "
                        "here (copy the MetricTemplate under another name)",
                    )
                )
            elif found is not None:
                custom[found[0]] = found[1]
            continue
        if "templateVariables" in metric:
            errors.append(FieldError(f"{where}.templateVariables", "applies with templateRef only"))
        if name not in BUILTIN_METRICS:
            names = ", ".join(show(n) for n in BUILTIN_METRICS)
            errors.append(
                FieldError(
                    f"{where}.name", f"is not a built-in metric: one of {names} (or a templateRef)"
                )
            )
            continue
        bound = BUILTIN_METRICS[name]
        limits = metric.get("thresholdRange")
        if "threshold" in metric:  # Flagger's old spelling (v1alpha)
            limits = {bound: metric["threshold"]}
        if not isinstance(limits, dict) or set(limits) - {"min", "max"}:
            errors.append(
                FieldError(
                    f"{where}.thresholdRange",
                    f"is required, like {{{bound}: "
                    f"{99 if bound == 'min' else 500}}}, got {show(limits)}",
                )
            )
            continue
        limit = limits.get(bound)
        other = ({"min", "max"} - {bound}) & set(limits)
        if other:
            errors.append(
                FieldError(
                    f"{where}.thresholdRange.{other.pop()}",
                    f"{name} is checked against its {bound} only",
                )
            )
        if isinstance(limit, bool) or not isinstance(limit, int | float):
            errors.append(
                FieldError(
                    f"{where}.thresholdRange.{bound}", f"must be a number, got {show(limit)}"
                )
            )
            continue
        if name == "request-success-rate":
            if not 0 <= limit <= 100:
                errors.append(
                    FieldError(
                        f"{where}.thresholdRange.min", f"is a percentage (0-100), got {show(limit)}"
                    )
                )
                continue
            args["max-error-rate"] = _number((100 - limit) / 100)
        else:
            args["max-duration"] = _number(limit)
    if not custom:
        return {"template": BUILTIN_TEMPLATE, "args": args} if args else None
    names = ([BUILTIN_TEMPLATE] if args else []) + list(custom)
    per = {name: {"args": given} for name, given in custom.items()}
    if args:
        per[BUILTIN_TEMPLATE] = {"args": args}
    ref: dict[str, Any] = {"template": names[0], "args": {}, "per_template": per}
    if len(names) > 1:
        ref = {"templates": names, "args": {}, "per_template": per}
    return ref


def _template_ref(
    metric: dict[str, Any], where: str, errors: list[FieldError], context: dict[str, str]
) -> tuple[str, dict[str, str]] | None:
    """(the MetricTemplate's name, the arguments it runs with) of a ``templateRef`` metric;
    None after recording what is wrong."""
    before = len(errors)
    ref = metric["templateRef"]
    name = ref.get("name") if isinstance(ref, dict) else None
    if not isinstance(name, str) or not TEMPLATE_NAME.fullmatch(name):
        message = "is required: the MetricTemplate's name (stored with POST /analysis-templates)"
        errors.append(FieldError(f"{where}.templateRef.name", f"{message}, got {show(name)}"))
    for key in ref if isinstance(ref, dict) else ():
        if key not in ("name", "namespace"):  # templates are not namespaced here
            errors.append(FieldError(f"{where}.templateRef.{key}", f"unknown key {show(key)}"))
    given = {"namespace": context["namespace"]}
    if context["ingress"]:
        given["ingress"] = context["ingress"]
    limits = metric.get("thresholdRange")
    variables = metric.get("templateVariables", {})
    interval = metric.get("interval")
    shapes = [
        (
            isinstance(limits, dict) and limits and not set(limits) - {"min", "max"},
            "thresholdRange",
            "is required: {min: N}, {max: N} or both",
            limits,
        ),
        (
            isinstance(variables, dict),
            "templateVariables",
            "must be an object of name -> value",
            variables,
        ),
        (
            interval is None or isinstance(interval, str) and PROM_DURATION.fullmatch(interval),
            "interval",
            "must be a Prometheus duration like 1m or 30s (the query's window)",
            interval,
        ),
    ]
    for good, key, message, value in shapes:
        if not good:
            errors.append(FieldError(f"{where}.{key}", f"{message}, got {show(value)}"))
    if len(errors) > before:
        return None
    for bound, limit in limits.items():
        value = _scalar(limit, f"{where}.thresholdRange.{bound}", errors, text=False)
        given.update({bound: value} if value is not None else {})
    if len(limits) == 2 and len(errors) == before and limits["min"] > limits["max"]:
        errors.append(FieldError(f"{where}.thresholdRange", "min is above max"))
    if interval is not None:
        given["metric-interval"] = interval
    for key, text in variables.items():
        value = _scalar(text, f"{where}.templateVariables.{key}", errors, text=True)
        given.update({f"variables.{key}": value} if value is not None else {})
    return (name, given) if len(errors) == before else None  # type: ignore[return-value]


def _scalar(value: Any, path: str, errors: list[FieldError], *, text: bool) -> str | None:
    """``value`` as an argument's text: a number (or, with ``text``, a string too); None after
    recording why not."""
    kinds = (str, int, float) if text else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds):
        wanted = "a string or a number" if text else "a number"
        errors.append(FieldError(path, f"must be {wanted}, got {show(value)}"))
        return None
    return value if isinstance(value, str) else _number(value)


def _number(value: float) -> str:
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    return text or "0"


# The built-in template Flagger's built-in metrics run as (releases.analysis.templates.BUILTIN): the
# new release's error rate and p99 latency, each checked against its ceiling at every interval.
BUILTIN_TEMPLATE_SPEC: dict[str, Any] = {
    "args": [
        {"name": "max-error-rate", "value": "0.01"},
        {"name": "max-duration", "value": "500"},
    ],
    "metrics": [
        {
            "name": "request-success-rate",
            "provider": "local",
            "query": "error_rate",
            "interval": "1m",
            "failure_condition": "canary > {{args.max-error-rate}}",
        },
        {
            "name": "request-duration",
            "provider": "local",
            "query": "latency",
            "statistic": "p99",
            "unit": "ms",
            "interval": "1m",
            "failure_condition": "canary > {{args.max-duration}}",
        },
    ],
}


def _hook_template(name: str, query: str, condition: dict[str, str], **extra: Any) -> dict:
    return {
        "args": [{"name": "hooks"}, {"name": "phase", "value": "Progressing"}],
        "metrics": [
            {
                "name": name,
                "provider": "webhook",
                "query": query,
                "interval": "1m",
                **condition,
                **extra,
            }
        ],
    }


# Flagger's webhooks (integrations.metrics.webhook): rollout hooks checked every interval (a
# failure counts toward the threshold), rollback hooks (a 2xx rolls back), pre-rollout hooks
# (an analysis step before any traffic moves: passes at the first success, fails at the
# threshold-th failure)
HOOK_TEMPLATES: dict[str, tuple[str, dict[str, Any]]] = {
    ROLLOUT_TEMPLATE: (
        "Flagger's rollout webhooks: every hook answers 2xx, at every interval",
        _hook_template("rollout-webhooks", "all", {"success_condition": "canary == 1"}),
    ),
    ROLLBACK_TEMPLATE: (
        "Flagger's rollback webhooks: a 2xx from any of them rolls back",
        _hook_template("rollback-webhooks", "any", {"failure_condition": "canary == 1"}),
    ),
    PRE_ROLLOUT_TEMPLATE: (
        "Flagger's pre-rollout webhooks: every hook answers 2xx before traffic moves",
        _hook_template(
            "pre-rollout-webhooks",
            "all",
            {"success_condition": "canary == 1"},
            count=1000,
            consecutive_success_limit=1,
        ),
    ),
}

BUILTIN_TEMPLATE_DESCRIPTION = (
    "Flagger's built-in metrics: request-success-rate (error rate at most max-error-rate) and "
    "request-duration (p99 at most max-duration ms), checked every interval"
)
