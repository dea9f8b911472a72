"""The canary ``experiment`` step: a fresh baseline and a fresh canary side by side, measured.

Ours (Argo Rollouts' ``experiment`` step, translated by ``from_argo``)::

    {"experiment": {
        "duration": "10m",
        "templates": [{"name": "baseline", "spec_ref": "stable", "replicas": 1, "weight": 5},
                      {"name": "canary", "spec_ref": "canary", "replicas": 1, "weight": 5}],
        "analyses": [{"name": "compare", "template": "error-rate", "args": {"max": "0.05"},
                      "required_for_completion": false}]}}

Each template is an extra slot of the target (``experiment_slots``, see
``strategies.spec.required_capabilities``) running the old release (``spec_ref: stable``) or the
new one (``canary``), ``replicas`` instances (default 1), and -- with ``weight`` -- that share of
new requests, taken from the old release's share. Once every experiment slot is available, the
analyses start, each measuring the experiment's canary against its baseline (Kayenta-style: both
fresh, on equal footing; a side without a template is the rollout's own slot of that release).
The step ends when ``duration`` has passed since the slots became available and every analysis
marked ``required_for_completion`` has passed (the others still measuring are stopped); with
neither, it waits for a person to promote (Argo runs such an experiment until it is ended). A
failed analysis fails the rollout (rolled back) at once; an inconclusive one waits for a person.
The experiment's slots are torn down when the step ends, and on an abort or a rollback.

The engine names an experiment slot by its key, ``"<step index>-<template name>"``
(``slot_keys``); the reconcile loop gives it a slot name of its own per deployment.
"""

from __future__ import annotations

import re
from typing import Any

from strategies import spec_analysis
from strategies.argo import Translation
from strategies.fields import FieldError, Fields, duration, show, whole

NAME = re.compile(r"[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?")
SPEC_REFS = ("stable", "canary")
EXAMPLE = (
    '{"duration": "5m", "templates": [{"name": "baseline", "spec_ref": "stable"}, '
    '{"name": "canary", "spec_ref": "canary"}]}'
)
# Argo's fields of an experiment template that describe the Kubernetes pods and objects (the
# target runs the release here): accepted and not used
ARGO_TEMPLATE_IGNORED = ("selector", "metadata", "template", "service", "minReadySeconds")
ARGO_TEMPLATE_KEYS = {"name": "name", "specRef": "spec_ref", "replicas": "replicas"}
ARGO_ANALYSIS_KEYS = {"name": "name", "requiredForCompletion": "required_for_completion"}
ARGO_STEP_IGNORED = ("analysisRunMetadata",)
ARGO_STEP_UNSUPPORTED = {
    "dryRun": "is not supported on an experiment: set dryRun on the AnalysisTemplate (or "
    "dry_run on its metrics)",
}
# every field of Argo's experiment step, its templates and its analyses (the compatibility page)
ARGO_STEP_FIELDS = ("duration", "templates", "analyses", *ARGO_STEP_IGNORED, *ARGO_STEP_UNSUPPORTED)
ARGO_TEMPLATE_FIELDS = (*ARGO_TEMPLATE_KEYS, "weight", *ARGO_TEMPLATE_IGNORED)
ARGO_ANALYSIS_FIELDS = (
    *ARGO_ANALYSIS_KEYS,
    "templateName",
    "clusterScope",
    "args",
)
# Argo's placeholder for an experiment template's pods, in an analysis argument: here the
# template's slot name (how its instances are told apart in the metrics)
POD_HASH = re.compile(r"\{\{\s*templates\.([a-z0-9-]+)\.podTemplateHash\s*\}\}")


def read(value: Any, path: str, errors: list[FieldError]) -> dict[str, Any] | None:
    if not isinstance(value, dict):
        errors.append(FieldError(path, f"must be an object like {EXAMPLE}, got {show(value)}"))
        return None
    fields = Fields(value, path, errors)
    seconds = fields.take("duration", None, duration(positive=True))
    templates = _templates(fields)
    analyses = _analyses(fields, templates)
    fields.finish()
    return {"duration": seconds, "templates": templates, "analyses": analyses}


def _templates(fields: Fields) -> list[dict[str, Any]]:
    fields.seen.add("templates")
    raw = fields.raw.get("templates")
    path = fields.path("templates")
    if not isinstance(raw, list) or not raw:
        fields.errors.append(
            FieldError(
                path,
                "must list the slots to run, like "
                '[{"name": "baseline", "spec_ref": "stable"}, {"name": "canary", "spec_ref": '
                f'"canary"}}], got {show(raw)}',
            )
        )
        return []
    out, seen = [], set()
    for index, item in enumerate(raw):
        where = f"{path}[{index}]"
        if not isinstance(item, dict):
            fields.errors.append(
                FieldError(
                    where,
                    f'must be like {{"name": "canary", "spec_ref": "canary"}}, got {show(item)}',
                )
            )
            continue
        template = Fields(item, where, fields.errors)
        name = template.take("name", None, _name)
        if name is None and "name" not in item:
            template.error("name", "is required: a name like 'baseline' (it names the slot)")
        elif name in seen:
            template.error("name", f"names a template twice: {show(name)}")
        seen.add(name)
        spec_ref = template.take("spec_ref", None, _spec_ref)
        if "spec_ref" not in item:
            template.error(
                "spec_ref", "is required: 'stable' (the old release) or 'canary' (the new one)"
            )
        replicas = template.take("replicas", 1, whole(1))
        weight = template.take("weight", None, _weight)
        template.finish()
        out.append({"name": name, "spec_ref": spec_ref, "replicas": replicas, "weight": weight})
    return out


def _analyses(fields: Fields, templates: list[dict[str, Any]]) -> list[dict[str, Any]]:
    fields.seen.add("analyses")
    raw = fields.raw.get("analyses")
    if raw is None:
        return []
    path = fields.path("analyses")
    if not isinstance(raw, list):
        fields.errors.append(
            FieldError(
                path,
                'must be a list like [{"name": "compare", "template": "error-rate"}], '
                f"got {show(raw)}",
            )
        )
        return []
    out, seen = [], set()
    names = {t["name"] for t in templates}
    for index, item in enumerate(raw):
        where = f"{path}[{index}]"
        if not isinstance(item, dict):
            fields.errors.append(
                FieldError(
                    where,
                    f'must be like {{"name": "compare", "template": "error-rate"}}, '
                    f"got {show(item)}",
                )
            )
            continue
        rest = {k: v for k, v in item.items() if k not in ("name", "required_for_completion")}
        ref = spec_analysis.read_ref(rest, where, fields.errors) or {}
        analysis = Fields(item, where, fields.errors)
        analysis.seen.update(rest)
        name = analysis.take("name", None, _name)
        if name is None and "name" not in item:
            analysis.error("name", "is required: a name like 'compare'")
        elif name in seen:
            analysis.error("name", f"names an analysis twice: {show(name)}")
        seen.add(name)
        required = analysis.take("required_for_completion", False, _flag)
        analysis.finish()
        for arg, value in (ref.get("args") or {}).items():
            for match in POD_HASH.finditer(value):
                if match.group(1) not in names:
                    fields.errors.append(
                        FieldError(
                            f"{where}.args.{arg}",
                            f"names no template of this experiment: {show(match.group(1))}",
                        )
                    )
        out.append({"name": name, **ref, "required_for_completion": required})
    return out


def _name(value: Any) -> str:
    if not isinstance(value, str) or not NAME.fullmatch(value):
        raise ValueError(
            f"must be a name of lower-case letters, digits and '-' (at most 40), got {show(value)}"
        )
    return value


def _spec_ref(value: Any) -> str:
    if value not in SPEC_REFS:
        raise ValueError(
            f"must be 'stable' (the old release) or 'canary' (the new one), got {show(value)}"
        )
    return value


def _weight(value: Any) -> int | None:
    if value is None:
        return None
    try:
        number = whole(0)(value)
    except ValueError:
        raise ValueError(f"must be a whole number between 0 and 100, got {show(value)}") from None
    if number > 100:
        raise ValueError(f"must be between 0 and 100, got {show(value)}")
    return number


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"must be true or false, got {show(value)}")
    return value


# --- what the engine and the reconcile loop read of a normalised step ---------------------------


def slot_key(index: int, name: str) -> str:
    """The engine's name of the slot of template ``name`` of the experiment at step ``index``."""
    return f"{index}-{name}"


def slot_keys(spec: dict[str, Any]) -> dict[str, str]:
    """Every experiment slot a normalised canary spec may run: key -> its ``spec_ref``."""
    out = {}
    for index, step in enumerate(spec.get("steps") or []):
        for template in (step.get("experiment") or {}).get("templates") or []:
            out[slot_key(index, template["name"])] = template["spec_ref"]
    return out


def weight_of(step: dict[str, Any]) -> int:
    """The share of new requests the experiment's slots take together."""
    return sum(t["weight"] or 0 for t in step["templates"])


def arms(index: int, step: dict[str, Any]) -> dict[str, str]:
    """Which slots an analysis of the experiment at step ``index`` compares: ``{"baseline":
    key | "stable", "canary": key | "canary"}`` (the first template of each release; a release
    without one is measured on the rollout's own slot)."""
    out = {"baseline": "stable", "canary": "canary"}
    for side, ref in (("baseline", "stable"), ("canary", "canary")):
        for template in step["templates"]:
            if template["spec_ref"] == ref:
                out[side] = slot_key(index, template["name"])
                break
    return out


def analysis_key(index: int, name: str) -> str:
    return f"experiment-{index}-{name}"


def words(step: dict[str, Any]) -> str:
    """ "experiment for 10m: baseline (1 instance of the old release, 5%) and canary (...)"."""
    from strategies.durations import format_duration

    parts = []
    for t in step["templates"]:
        release = "the old release" if t["spec_ref"] == "stable" else "the new release"
        many = "instance" if t["replicas"] == 1 else "instances"
        share = f", {t['weight']}% of requests" if t["weight"] else ""
        parts.append(f"{t['name']} ({t['replicas']} {many} of {release}{share})")
    seconds = step["duration"]
    required = [a for a in step["analyses"] if a["required_for_completion"]]
    if seconds is not None:
        head = f"experiment for {format_duration(seconds)}"
    elif required:
        head = "experiment until its required analyses pass"
    else:
        head = "experiment until promoted"
    text = f"{head}: {', '.join(parts)}"
    if step["analyses"]:
        said = "; ".join(f"{a['name']}: {spec_analysis.words(a)}" for a in step["analyses"])
        text += f"; {said} (fail: roll back)"
    return text + "; then torn down"


# --- Argo Rollouts' experiment step ---------------------------------------------------------------


def from_argo(
    value: Any, theirs: str, ours: str, out: Translation, errors: list[FieldError]
) -> Any:
    """Argo's ``experiment`` step written at ``theirs`` as ours (to be read at ``ours``)."""
    if not isinstance(value, dict):
        return value  # our reader reports it
    result: dict[str, Any] = {}
    for key, inner in value.items():
        where = f"{theirs}.{key}"
        if key == "duration":
            result["duration"] = inner
            out.paths.append((f"{ours}.duration", where))
        elif key == "templates":
            result["templates"] = _argo_templates(inner, where, f"{ours}.templates", out, errors)
            out.paths.append((f"{ours}.templates", where))
        elif key == "analyses":
            result["analyses"] = _argo_analyses(inner, where, f"{ours}.analyses", out, errors)
            out.paths.append((f"{ours}.analyses", where))
        elif key in ARGO_STEP_UNSUPPORTED:
            errors.append(FieldError(where, ARGO_STEP_UNSUPPORTED[key]))
        elif key not in ARGO_STEP_IGNORED:
            errors.append(
                FieldError(
                    where,
                    f"unknown key {show(key)} (not a field of Argo's experiment step either): "
                    "use duration, templates, analyses",
                )
            )
    if "templates" not in value:
        out.paths.append((f"{ours}.templates", f"{theirs}.templates"))
    return result


def _each_object(value: Any, translate) -> Any:
    """``translate(index, item)`` for each object of a list; anything else passes through as it
    is, for the spec reader to name."""
    if not isinstance(value, list):
        return value
    return [translate(i, item) if isinstance(item, dict) else item for i, item in enumerate(value)]


def _argo_templates(
    value: Any, theirs: str, ours: str, out: Translation, errors: list[FieldError]
) -> Any:
    def one(index: int, item: dict) -> dict:
        template: dict[str, Any] = {}
        for key, inner in item.items():
            where, at = f"{theirs}[{index}].{key}", f"{ours}[{index}]"
            if key in ARGO_TEMPLATE_KEYS or key == "weight":
                mine = ARGO_TEMPLATE_KEYS.get(key, key)
                template[mine] = inner
                out.paths.append((f"{at}.{mine}", where))
            elif key not in ARGO_TEMPLATE_IGNORED:
                errors.append(
                    FieldError(
                        where,
                        f"unknown key {show(key)} (not a field of Argo's experiment template "
                        "either): use name, specRef, replicas, weight",
                    )
                )
        if "name" not in item:
            out.paths.append((f"{ours}[{index}].name", f"{theirs}[{index}]"))
        if "specRef" not in item:
            out.paths.append((f"{ours}[{index}].spec_ref", f"{theirs}[{index}].specRef"))
        return template

    return _each_object(value, one)


def _argo_analyses(
    value: Any, theirs: str, ours: str, out: Translation, errors: list[FieldError]
) -> Any:
    def one(index: int, item: dict) -> dict:
        where, at = f"{theirs}[{index}]", f"{ours}[{index}]"
        named = {k: v for k, v in item.items() if k in ARGO_ANALYSIS_KEYS}
        rest = {k: v for k, v in item.items() if k not in ARGO_ANALYSIS_KEYS}
        if "clusterScope" in rest:  # templates are not namespaced here
            rest.pop("clusterScope")
        ref = spec_analysis.from_argo(rest, where, at, out, errors)
        analysis = {ARGO_ANALYSIS_KEYS[k]: v for k, v in named.items()}
        for key, mine in ARGO_ANALYSIS_KEYS.items():
            if key in item:
                out.paths.append((f"{at}.{mine}", f"{where}.{key}"))
        if "name" not in item:
            out.paths.append((f"{at}.name", where))
        return {**analysis, **ref}

    return _each_object(value, one)
