"""Analysis references in strategy specs: reading ours, translating Argo Rollouts', wording them.

Ours, wherever a spec runs an analysis (a canary step, canary background analysis, blue-green
pre-/post-promotion analysis, a rolling update's analysis after each batch)::

    {"template": "error-rate", "args": {"max-errors": "0.05"}}

``template`` names a stored analysis template (``releases.analysis.runs``; whether it exists is
checked by the caller, ``normalise(..., templates=...)``, since the spec is pure); ``args``
binds its arguments (strings or numbers, kept as strings). ``"templates": ["error-rate",
"latency"]`` instead runs several templates side by side with the same args, as one analysis:
it fails when any fails and passes when all pass (normalised: ``template`` is the first and
``templates`` lists them all; a single template has no ``templates`` key). Canary background
analysis adds ``start_at_step`` (the index into ``steps``, 0-based like Argo's
``startingStep``; default 0).

Argo Rollouts' ``{"templates": [{"templateName": "error-rate"}, ...], "args": [{"name":
"max-errors", "value": "0.05"}], "startingStep": 2}`` is translated (several templates too), and
``valueFrom`` arguments (read from Kubernetes objects) are refused.

An optional ``failure_limit`` (a whole number) and ``interval`` (a duration) replace those of
every metric of the templates for this analysis (Flagger's ``threshold`` and ``interval``,
``strategies.flagger``); ``per_template`` gives one template of the reference its own args
(merged over the shared ones) and ``failure_limit`` (Flagger's metrics, each with its own
thresholds); ``measurement_retention`` (metric name, or ``"*"``, -> how many of its
latest measurements are stored; Argo's ``measurementRetention`` on the reference) replaces the
templates' own.
"""

from __future__ import annotations

import re
from typing import Any

from strategies.analysis import argo_template
from strategies.argo import Translation
from strategies.fields import FieldError, Fields, duration, show, whole

TEMPLATE_NAME = re.compile(r"[-a-zA-Z0-9_]{1,63}")
# an Argo value already reported as wrong while translating (so it is not reported twice)
REPORTED = object()
EXAMPLE = '{"template": "error-rate", "args": {"max-errors": "0.05"}}'
ARGO_TEMPLATE_KEYS = ("templateName", "clusterTemplateName", "clusterScope")
# Argo's keys of an analysis reference that describe the AnalysisRun object: accepted, not used
ARGO_IGNORED = ("name", "analysisRunMetadata")
ARGO_UNSUPPORTED = {
    "dryRun": "is not supported on the reference: set dryRun on the AnalysisTemplate (or "
    "dry_run on its metrics)",
}


def read_ref(
    value: Any, path: str, errors: list[FieldError], *, background: bool = False
) -> dict[str, Any] | None:
    """The normalised reference at ``path``: ``{"template", "args"}`` (and ``start_at_step``
    with ``background``); None (after recording why) if it is not one."""
    if not isinstance(value, dict):
        errors.append(FieldError(path, f"must be an object like {EXAMPLE}, got {show(value)}"))
        return None
    fields = Fields(value, path, errors)
    several = fields.take("templates", None, _template_names) if "templates" in value else None
    if "template" not in value and "templates" not in value:
        errors.append(FieldError(f"{path}.template", "is required: an analysis template's name"))
    elif "template" in value and "templates" in value:
        errors.append(FieldError(f"{path}.templates", "give 'template' or 'templates', not both"))
    if value.get("template") is REPORTED:
        fields.seen.add("template")
        template = None
    elif several is not None:
        template = several[0]
    else:
        template = fields.take("template", None, template_name)
    out = {"template": template, "args": _read_args(fields)}
    if several is not None and len(several) > 1:
        out["templates"] = several
    if background:
        out["start_at_step"] = fields.take("start_at_step", 0, whole(0))
    # replace each metric's failure_limit / interval (Flagger's threshold and interval)
    if "failure_limit" in value:
        out["failure_limit"] = fields.take("failure_limit", None, whole(0))
    if "interval" in value:
        out["interval"] = fields.take("interval", None, duration(positive=True))
    if "per_template" in value:
        out["per_template"] = _per_template(fields, out)
    if value.get("measurement_retention") is REPORTED:
        fields.seen.add("measurement_retention")
    elif "measurement_retention" in value:  # metric name ("*": every one) -> measurements kept
        out["measurement_retention"] = fields.take("measurement_retention", None, _retention)
    fields.finish()
    return out


def _per_template(fields: Fields, ref: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``per_template``: template name -> ``{"args": {...}, "failure_limit": n}``, what one
    template of the reference takes besides (or instead of) the shared ``args`` and limits
    (Flagger's metrics: each its own thresholds and variables)."""
    fields.seen.add("per_template")
    raw, path = fields.raw["per_template"], fields.path("per_template")
    names = ref.get("templates") or [ref.get("template")]
    if not isinstance(raw, dict):
        fields.errors.append(
            FieldError(
                path, f'must be an object of template name -> {{"args": {{...}}}}, got {show(raw)}'
            )
        )
        return {}
    out = {}
    for name, part in raw.items():
        where = f"{path}.{name}"
        if name not in names:
            fields.errors.append(
                FieldError(
                    where, f"is not one of the reference's templates ({', '.join(map(str, names))})"
                )
            )
            continue
        inner = Fields(part if isinstance(part, dict) else {}, where, fields.errors)
        if not isinstance(part, dict):
            fields.errors.append(FieldError(where, f"must be an object, got {show(part)}"))
            continue
        got: dict[str, Any] = {"args": _read_args(inner) or {}}
        if "failure_limit" in part:
            got["failure_limit"] = inner.take("failure_limit", None, whole(0))
        inner.finish()
        out[name] = got
    return out


def _retention(value: Any) -> dict[str, int]:
    """Converter: metric name (or "*") -> how many of its latest measurements are stored."""
    if not isinstance(value, dict) or not value:
        raise ValueError(
            f'must be an object of metric name -> count like {{"*": 20}}, got {show(value)}'
        )
    return {str(name): whole(1)(limit) for name, limit in value.items()}


def template_name(value: Any) -> str:
    """Converter: an analysis template's name (a slug of at most 63 characters)."""
    if not isinstance(value, str) or not TEMPLATE_NAME.fullmatch(value):
        raise ValueError(
            "must be an analysis template's name (letters, digits, '-' and '_', at most 63), "
            f"got {show(value)}"
        )
    return value


def _template_names(value: Any) -> list[str]:
    """Converter: a non-empty list of distinct analysis template names."""
    if not isinstance(value, list) or not value:
        raise ValueError(
            f'must be a non-empty list of template names like ["error-rate"], got {show(value)}'
        )
    names = [template_name(item) for item in value]
    if len(set(names)) != len(names):
        raise ValueError(f"names a template twice: {show(value)}")
    return names


def _read_args(fields: Fields) -> dict[str, str] | None:
    fields.seen.add("args")
    raw = fields.raw.get("args", {})
    path = fields.path("args")
    if not isinstance(raw, dict):
        fields.errors.append(
            FieldError(
                path, f'must be an object of values like {{"max-errors": "0.05"}}, got {show(raw)}'
            )
        )
        return None
    out = {}
    for name, value in raw.items():
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            fields.errors.append(
                FieldError(f"{path}.{name}", f"must be a string or a number, got {show(value)}")
            )
            continue
        out[str(name)] = str(value)
    return out


def words(ref: dict[str, Any]) -> str:
    """ "analysis 'error-rate' (max-errors=0.05)"."""
    args = dict(ref.get("args") or {})
    for part in (ref.get("per_template") or {}).values():
        args.update(part.get("args") or {})
    given = f" ({', '.join(f'{k}={v}' for k, v in sorted(args.items()))})" if args else ""
    names = ref.get("templates") or [ref["template"]]
    return f"analysis {' + '.join(show(name) for name in names)}{given}"


def from_argo(
    value: Any,
    theirs: str,
    ours: str,
    out: Translation,
    errors: list[FieldError],
    *,
    background: bool = False,
) -> Any:
    """Argo's analysis block written at ``theirs`` as our reference (to be read at ``ours``);
    paths of the parts it maps are added to ``out`` so errors name the key the user wrote."""
    if not isinstance(value, dict):
        return value  # our reader reports it
    result: dict[str, Any] = {}
    for key, inner in value.items():
        where = f"{theirs}.{key}"
        if key == "templates":
            names = _argo_templates(inner, where, errors)
            if names is None:
                result["template"] = REPORTED
            elif len(names) == 1:
                result["template"] = names[0]
            else:
                result["templates"] = names
            out.paths.append((f"{ours}.template", f"{where}[0].templateName"))
            out.paths.append((f"{ours}.templates", where))
        elif key == "args":
            result["args"] = _argo_args(inner, where, ours, out, errors)
        elif key == "templateName" and "templates" not in value:  # Argo's first, short form
            result["template"] = inner
            out.paths.append((f"{ours}.template", where))
        elif key == "startingStep" and background:
            result["start_at_step"] = inner
            out.paths.append((f"{ours}.start_at_step", where))
        elif key == "measurementRetention":
            result["measurement_retention"] = (
                argo_template.retention(inner, where, errors) or REPORTED
            )
            out.paths.append((f"{ours}.measurement_retention", where))
        elif key in ARGO_UNSUPPORTED:
            errors.append(FieldError(where, ARGO_UNSUPPORTED[key]))
        elif key == "startingStep":
            errors.append(
                FieldError(where, "applies to background analysis (canary.analysis) only")
            )
        elif key not in ARGO_IGNORED:
            errors.append(FieldError(where, f"unknown key {show(key)}"))
    if "templates" not in value and "templateName" not in value:  # our reader: required
        out.paths.append((f"{ours}.template", f"{theirs}.templates"))
    return result


def _argo_templates(value: Any, path: str, errors: list[FieldError]) -> list[str] | None:
    if not isinstance(value, list) or not value:
        errors.append(
            FieldError(
                path,
                'must list one template or more, like [{"templateName": "error-rate"}], '
                f"got {show(value)}",
            )
        )
        return None
    names = [_argo_template(item, f"{path}[{i}]", errors) for i, item in enumerate(value)]
    return None if None in names else names  # type: ignore[return-value]


def _argo_template(item: Any, path: str, errors: list[FieldError]) -> str | None:
    names = (
        [item.get(k) for k in ("templateName", "clusterTemplateName")]
        if isinstance(item, dict)
        else []
    )
    given = [n for n in names if n is not None]
    if len(given) != 1:
        errors.append(
            FieldError(path, f'must be like {{"templateName": "error-rate"}}, got {show(item)}')
        )
        return None
    for key in item:
        if key not in ARGO_TEMPLATE_KEYS:
            errors.append(FieldError(f"{path}.{key}", f"unknown key {show(key)}"))
    # templates are not namespaced here: a cluster template is a template like any other
    return given[0]


def _argo_args(value: Any, path: str, ours: str, out: Translation, errors: list[FieldError]) -> Any:
    if not isinstance(value, list):
        errors.append(
            FieldError(
                path,
                f'must be a list like [{{"name": "max-errors", "value": "0.05"}}], '
                f"got {show(value)}",
            )
        )
        return {}
    args = {}
    for index, item in enumerate(value):
        where = f"{path}[{index}]"
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            errors.append(
                FieldError(
                    where,
                    f'must be like {{"name": "max-errors", "value": "0.05"}}, got {show(item)}',
                )
            )
            continue
        name = item["name"]
        for key in item:
            if key == "valueFrom":
                errors.append(
                    FieldError(
                        f"{where}.valueFrom",
                        "is not supported (there are no Kubernetes objects to read here): give "
                        "the value",
                    )
                )
            elif key not in ("name", "value"):
                errors.append(FieldError(f"{where}.{key}", f"unknown key {show(key)}"))
        if "value" in item:
            args[name] = item["value"]
            out.paths.append((f"{ours}.args.{name}", f"{where}.value"))
    return args
