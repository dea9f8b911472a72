"""Flagger's ``MetricTemplate`` (``apiVersion: flagger.app/v1beta1``, ``kind: MetricTemplate``),
pasted as it is, as one of our analysis templates (``strategies.analysis.template``).

A MetricTemplate is one query against one provider; the limits it is checked against are the
Canary's (``metrics[].thresholdRange``), so the template takes them as arguments::

    spec: {provider: {type: prometheus, address: http://prometheus:9090},
           query: 'sum(rate(errors{ns="{{ namespace }}", app="{{ target }}"}[{{ interval }}]))'}

becomes one threshold metric (named after ``metadata.name``) with the failure condition
``canary < {{args.min}} || canary > {{args.max}}`` (Flagger fails a check whose value is outside
the range) and these arguments, which the Canary's translation (``strategies.flagger``) passes:

- ``min`` / ``max``: the Canary's ``thresholdRange`` (defaults: no bound, -1e308 / 1e308);
- ``namespace``: the Canary's ``metadata.namespace`` (default ``default``);
- ``metric-interval``: the Canary metric's ``interval`` (default ``1m``), Flagger's
  ``{{ interval }}``;
- ``ingress``: the Canary's ``ingressRef.name`` (default empty);
- ``variables.NAME`` for each ``{{ variables.NAME }}`` the query uses: the Canary's
  ``templateVariables`` (no default: a Canary must give the ones its template uses).

``{{ target }}`` is our ``{{target}}`` (the target's key: name a Kubernetes target like its
Deployment) and ``{{ service }}`` our ``{{service}}``; ours, ``{{ slot }}`` and ``{{ version }}``
(the new release's slot and version), may be used too, to select the new release's series.
Flagger's other Go-template syntax (``{{ if }}``, pipelines) is refused naming it. Only the
``prometheus`` provider runs here; the others Flagger has are named as not supported
(``PROVIDERS_LATER``).

May import: ``strategies.analysis.template``, ``strategies.fields``.
"""

from __future__ import annotations

import re
from typing import Any

from strategies.analysis import template
from strategies.analysis.template import TemplateError
from strategies.fields import FieldError, show

API_GROUP = "flagger.app/"
KIND = "MetricTemplate"
NO_MIN, NO_MAX = "-1e308", "1e308"
CONDITION = "canary < {{args.min}} || canary > {{args.max}}"
# Flagger's variables -> ours (None: an argument of the same name)
VARIABLES = {  # ours too: the canary arm's slot and version
    "target": "{{target}}",
    "service": "{{service}}",
    "slot": "{{slot}}",
    "version": "{{version}}",
}
ARGS = {  # the arguments every translated template declares, with their defaults
    "min": NO_MIN,
    "max": NO_MAX,
    "namespace": "default",
    "metric-interval": "1m",
    "ingress": "",
}
FLAGGER_ARG = {"namespace": "namespace", "interval": "metric-interval", "ingress": "ingress"}
GO_PLACEHOLDER = re.compile(r"\{\{(.*?)\}\}", re.S)
VARIABLE = re.compile(r"\s*(\.?[A-Za-z][A-Za-z0-9_]*(?:\.[A-Za-z0-9_\-]+)?)\s*")
PROVIDERS_LATER = (
    "datadog",
    "cloudwatch",
    "newrelic",
    "graphite",
    "influxdb",
    "stackdriver",
    "dynatrace",
    "keptn",
    "splunk",
)
PROVIDER_ADVICE = (
    "only the prometheus provider runs MetricTemplates here: rewrite the query in PromQL, or "
    "write an analysis template (docs/analysis.md)"
)
PROMETHEUS_LATER = {
    "secretRef": "is not supported: put credentials in the Prometheus provider's settings",
    "insecureSkipVerify": "is not supported: remove it",
}
# every key of a MetricTemplate's spec and its provider, for the compatibility page
SPEC_FIELDS = ("provider", "query")
PROVIDER_FIELDS = ("type", "address", *PROMETHEUS_LATER)


def is_manifest(raw: Any) -> bool:
    return (
        isinstance(raw, dict)
        and raw.get("kind") == KIND
        and str(raw.get("apiVersion", "")).startswith(API_GROUP)
    )


def name(raw: Any) -> str | None:
    meta = raw.get("metadata") if isinstance(raw, dict) else None
    value = meta.get("name") if isinstance(meta, dict) else None
    return value if isinstance(value, str) else None


def normalise(raw: Any) -> dict[str, Any]:
    """Our normalised template for the MetricTemplate ``raw``; raises TemplateError at the
    manifest's own paths (``spec.provider.type``)."""
    spec = raw.get("spec") if isinstance(raw, dict) else None
    if not isinstance(spec, dict):
        raise TemplateError([FieldError("spec", f"must be an object, got {show(spec)}")])
    errors: list[FieldError] = []
    metric: dict[str, Any] = {
        "name": name(raw) or "metric",
        "provider": "prometheus",
        "test": "threshold",
        "failure_condition": CONDITION,
    }
    for key in spec:
        if key not in SPEC_FIELDS:
            errors.append(
                FieldError(
                    f"spec.{key}", f"unknown key {show(key)} (not a field of a MetricTemplate)"
                )
            )
    metric.update(_provider(spec.get("provider"), "spec.provider", errors))
    query = spec.get("query")
    variables: list[str] = []
    if not isinstance(query, str) or not query.strip():
        errors.append(
            FieldError("spec.query", f"is required: the provider's query, got {show(query)}")
        )
    else:
        metric["query"] = _query(query, "spec.query", errors, variables)
    if errors:
        raise TemplateError(errors)
    args = [{"name": k, "value": v} for k, v in ARGS.items()]
    args += [{"name": f"variables.{v}", "value": None} for v in variables]
    try:
        return template.normalise({"args": args, "metrics": [metric]})
    except TemplateError as exc:
        raise TemplateError(
            [FieldError(f"spec.{_where(e.path)}", e.message) for e in exc.errors]
        ) from None


def _where(path: str) -> str:
    """Our template's path as the manifest's (metrics[0].query -> query)."""
    key = path.rpartition(".")[2]
    return {"address": "provider.address"}.get(key, "query")


def _provider(value: Any, path: str, errors: list[FieldError]) -> dict[str, Any]:
    if not isinstance(value, dict):
        errors.append(
            FieldError(
                path, f"is required: like {{type: prometheus, address: URL}}, got {show(value)}"
            )
        )
        return {}
    kind = value.get("type", "prometheus")
    if kind in PROVIDERS_LATER:
        errors.append(
            FieldError(f"{path}.type", f"the {kind} provider is not supported: {PROVIDER_ADVICE}")
        )
        return {}
    if kind != "prometheus":
        errors.append(
            FieldError(
                f"{path}.type", f"unknown provider {show(kind)}: prometheus, or one of Flagger's"
            )
        )
        return {}
    out: dict[str, Any] = {}
    for key, inner in value.items():
        if key == "address":
            out["address"] = inner
        elif key in PROMETHEUS_LATER:
            errors.append(FieldError(f"{path}.{key}", PROMETHEUS_LATER[key]))
        elif key != "type":
            errors.append(FieldError(f"{path}.{key}", f"unknown key {show(key)}"))
    return out  # no address: the provider's PROMETHEUS_URL


def _query(text: str, path: str, errors: list[FieldError], variables: list[str]) -> str:
    """Flagger's Go-template placeholders as ours; the ``variables.NAME`` used, in order."""

    def replace(match: re.Match) -> str:
        inner = match.group(1)
        found = VARIABLE.fullmatch(inner)
        word = found.group(1).lstrip(".") if found else None
        if word in VARIABLES:
            return VARIABLES[word]
        if word in FLAGGER_ARG:
            return f"{{{{args.{FLAGGER_ARG[word]}}}}}"
        if word and word.startswith("variables.") and word.count(".") == 1:
            if word[10:] not in variables:
                variables.append(word[10:])
            return f"{{{{args.{word}}}}}"
        known = ", ".join(f"{{{{ {v} }}}}" for v in (*VARIABLES, *FLAGGER_ARG, "variables.NAME"))
        errors.append(
            FieldError(path, f"{{{{{inner}}}}} is not supported: the query may use {known}")
        )
        return ""

    return GO_PLACEHOLDER.sub(replace, text)
