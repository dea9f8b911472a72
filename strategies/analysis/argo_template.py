"""Argo Rollouts' ``AnalysisTemplate`` / ``ClusterAnalysisTemplate``, pasted as it is, as ours.

``{"apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisTemplate", "metadata": {"name": ...},
"spec": {"args": [...], "metrics": [...], "dryRun": [...]}}`` (or just its ``spec``) becomes the
template ``strategies.analysis.template`` reads: ``args`` as they are; each metric's Argo keys
(``successCondition``, ``failureLimit`` and its old name ``maxFailures``, ``initialDelay``...)
by ``template``'s own translation; ``provider: {prometheus: {address, query}}`` and
``provider: {web: {url, jsonPath}}`` as ours; the template's ``dryRun: [{metricName: NAME}]``
(``"*"`` for all) as ``dry_run`` on those metrics.

What has no counterpart here is refused naming the key and what to use instead
(``UNSUPPORTED``, ``PROVIDERS_LATER``): every key of Argo's template is either translated or
named, never "unknown". ``measurementRetention`` becomes each metric's
``measurement_retention`` and ``consecutiveSuccessLimit`` its ``consecutive_success_limit``
(``strategies.analysis.run``). ``name(raw)`` is the template's ``metadata.name``, if any.

May import: ``strategies.analysis.template``, ``strategies.fields``.
"""

from __future__ import annotations

import shlex
from typing import Any

from strategies.analysis import template
from strategies.analysis.template import TemplateError
from strategies.fields import FieldError, show

KINDS = ("AnalysisTemplate", "ClusterAnalysisTemplate")
METRIC_ALIASES = {"maxFailures": "failureLimit"}
PROVIDERS_LATER = {
    "datadog": "the Datadog provider is not supported",
    "newRelic": "the New Relic provider is not supported",
    "wavefront": "the Wavefront provider is not supported",
    "kayenta": "the Kayenta provider is not supported (the judge here is Kayenta's: use "
    "test: mann_whitney)",
    "cloudWatch": "the CloudWatch provider is not supported",
    "graphite": "the Graphite provider is not supported",
    "influxdb": "the InfluxDB provider is not supported",
    "skywalking": "the SkyWalking provider is not supported",
    "plugin": "metric provider plugins are not supported",
}
PROVIDER_ADVICE = "; use a prometheus query, or the local provider's error_rate / latency"
UNSUPPORTED: dict[str, str] = {}
PROMETHEUS_KEYS = ("address", "query")
WEB_KEYS = {"url": "address", "jsonPath": "query"}
WEB_LATER = {
    "method": "only GET is supported: remove it (or set GET)",
    "body": "is not supported: the endpoint is read with a GET",
    "jsonBody": "is not supported: the endpoint is read with a GET",
    "headers": "is not supported in the template: put headers (credentials) in the settings' "
    "WEB_METRICS_HEADERS (URL prefix -> headers)",
    "timeoutSeconds": "is not supported per metric: set WEB_METRICS_TIMEOUT (default 10 s)",
    "insecure": "is not supported: remove it",
    "authentication": "is not supported: put credentials in WEB_METRICS_HEADERS",
}
PROMETHEUS_LATER = {
    "timeout": "is not supported: queries here time out after 10 s; remove it",
    "headers": "is not supported: put credentials in the Prometheus provider's settings",
    "authentication": "is not supported: put credentials in the Prometheus provider's settings",
    "insecure": "is not supported: remove it",
}
TEMPLATED_NUMBERS = ("count", "interval", "initialDelay", "failureLimit", "inconclusiveLimit")
# every key of Argo's metric, for the compatibility page
METRIC_FIELDS = (
    "name",
    "interval",
    "initialDelay",
    "count",
    "successCondition",
    "failureCondition",
    "failureLimit",
    "inconclusiveLimit",
    "consecutiveErrorLimit",
    "consecutiveSuccessLimit",
    "provider",
    *METRIC_ALIASES,
    *UNSUPPORTED,
)
# every key of Argo's template spec, for the compatibility page
SPEC_FIELDS = ("args", "metrics", "dryRun", "measurementRetention")


def is_manifest(raw: Any) -> bool:
    return isinstance(raw, dict) and raw.get("kind") in KINDS


def name(raw: Any) -> str | None:
    meta = raw.get("metadata") if is_manifest(raw) else None
    value = meta.get("name") if isinstance(meta, dict) else None
    return value if isinstance(value, str) else None


def normalise(raw: Any) -> dict[str, Any]:
    """The normalised template of Argo's manifest (or spec) ``raw``; raises TemplateError at
    the paths the user wrote (``spec.metrics[0].provider.job``)."""
    prefix = ""
    if is_manifest(raw):
        spec, prefix = raw.get("spec"), "spec."
        if not isinstance(spec, dict):
            raise TemplateError([FieldError("spec", f"must be an object, got {show(spec)}")])
    elif isinstance(raw, dict):
        spec = raw
    else:
        raise TemplateError([FieldError("", f"must be an object, got {show(raw)}")])
    errors: list[FieldError] = []
    ours = translate(spec, prefix, errors)
    try:
        out = template.normalise(ours)
    except TemplateError as exc:
        named = {e.path for e in errors}
        errors += [
            FieldError(prefix + e.path, e.message)
            for e in exc.errors
            if prefix + e.path not in named
        ]
    if errors:
        raise TemplateError(_unique(errors))
    return out


def translate(spec: dict[str, Any], prefix: str, errors: list[FieldError]) -> dict[str, Any]:
    """Argo's template spec as our raw template (its problems added to ``errors``)."""
    out: dict[str, Any] = {}
    for key, value in spec.items():
        if key == "args":
            out["args"] = _args(value, f"{prefix}args", errors)
        elif key == "metrics":
            out["metrics"] = value
        elif key in ("dryRun", "measurementRetention"):
            continue
        else:
            out[key] = value  # ours (judge) or a mistake our reader names
    if isinstance(out.get("metrics"), list):
        dry = _dry_run(spec.get("dryRun"), f"{prefix}dryRun", errors)
        names = {m.get("name") for m in out["metrics"] if isinstance(m, dict)}
        keep = retention(spec.get("measurementRetention"), f"{prefix}measurementRetention", errors)
        for name in set(keep) - names - {"*"}:
            errors.append(
                FieldError(
                    f"{prefix}measurementRetention", f"names no metric of the template: {name!r}"
                )
            )
        out["metrics"] = [
            _metric(m, f"{prefix}metrics[{i}]", errors, dry, keep)
            for i, m in enumerate(out["metrics"])
        ]
    return out


def retention(value: Any, path: str, errors: list[FieldError]) -> dict[str, int]:
    """Argo's ``measurementRetention: [{metricName: NAME, limit: N}]`` (``"*"``: every metric) as
    metric name -> how many of its latest measurements are stored."""
    if value is None:
        return {}
    if not isinstance(value, list):
        errors.append(
            FieldError(
                path, f"must be a list like [{{metricName: NAME, limit: 20}}], got {show(value)}"
            )
        )
        return {}
    out = {}
    for index, item in enumerate(value):
        name = item.get("metricName") if isinstance(item, dict) else None
        limit = item.get("limit") if isinstance(item, dict) else None
        if (
            not isinstance(name, str)
            or isinstance(limit, bool)
            or not isinstance(limit, int)
            or limit < 1
            or set(item) - {"metricName", "limit"}
        ):
            errors.append(
                FieldError(
                    f"{path}[{index}]",
                    f"must be like {{metricName: NAME, limit: 20}} (limit >= 1), got {show(item)}",
                )
            )
            continue
        out[name] = limit
    return out


def _args(value: Any, path: str, errors: list[FieldError]) -> Any:
    if not isinstance(value, list):
        return value
    out = []
    for index, item in enumerate(value):
        if isinstance(item, dict) and item.get("name") in template.BUILTIN_ARGS:
            errors.append(
                FieldError(
                    f"{path}[{index}].name",
                    f"{item['name']!r} names a built-in value here ({{{{{item['name']}}}}}): "
                    f"rename the argument (and its {{{{args.{item['name']}}}}} uses)",
                )
            )
        if isinstance(item, dict) and "valueFrom" in item:
            item = _value_from(item, f"{path}[{index}].valueFrom", errors)
        out.append(item)
    return out


def _value_from(item: dict[str, Any], path: str, errors: list[FieldError]) -> dict[str, Any]:
    """Argo's ``valueFrom: {secretKeyRef: {name, key}}`` as our ``secret`` (read from the secret
    store named in the settings at each measurement); a ``fieldRef`` is refused."""
    out = {k: v for k, v in item.items() if k != "valueFrom"}
    source = item["valueFrom"]
    ref = source.get("secretKeyRef") if isinstance(source, dict) else None
    if isinstance(source, dict) and set(source) == {"secretKeyRef"} and isinstance(ref, dict):
        out["secret"] = {k: v for k, v in ref.items() if k in ("name", "key")}
        return out
    if isinstance(source, dict) and "fieldRef" in source:
        errors.append(
            FieldError(
                f"{path}.fieldRef",
                "is not supported (it reads a field of the Rollout's pods): give the value when "
                "the analysis starts (the step's args) or as 'value'",
            )
        )
    else:
        errors.append(
            FieldError(path, f"must be like {{secretKeyRef: {{name, key}}}}, got {show(source)}")
        )
    return out


def _dry_run(value: Any, path: str, errors: list[FieldError]) -> set[str]:
    if value is None:
        return set()
    names = set()
    if isinstance(value, list):
        for index, item in enumerate(value):
            metric = item.get("metricName") if isinstance(item, dict) else None
            if isinstance(metric, str):
                names.add(metric)
            else:
                errors.append(
                    FieldError(
                        f"{path}[{index}]", f"must be like {{metricName: NAME}}, got {show(item)}"
                    )
                )
    else:
        errors.append(FieldError(path, f"must be a list like [{{metricName: NAME}}], got {value}"))
    return names


def _metric(
    raw: Any, path: str, errors: list[FieldError], dry: set[str], keep: dict[str, int]
) -> Any:
    if not isinstance(raw, dict):
        return raw
    out: dict[str, Any] = {}
    for key, value in raw.items():
        where = f"{path}.{key}"
        if key in UNSUPPORTED:
            errors.append(FieldError(where, UNSUPPORTED[key]))
        elif key == "provider":
            out.update(_provider(value, where, errors))
        elif key in TEMPLATED_NUMBERS and isinstance(value, str) and "{{" in value:
            errors.append(
                FieldError(
                    where,
                    f"placeholders are not supported in {key}: give the value ({show(value)} "
                    "is only known when the analysis starts)",
                )
            )
        else:
            out[METRIC_ALIASES.get(key, key)] = value
    if out.get("name") in dry or "*" in dry:
        out["dryRun"] = True
    limit = keep.get(out.get("name"), keep.get("*"))  # type: ignore[arg-type]
    if limit is not None:
        out["measurement_retention"] = limit
    return out


def _provider(value: Any, path: str, errors: list[FieldError]) -> dict[str, Any]:
    if not isinstance(value, dict) or len(value) != 1:
        return {"provider": value}  # ours ("local", "prometheus") or a mistake our reader names
    ((kind, options),) = value.items()
    if kind in PROVIDERS_LATER:
        errors.append(FieldError(f"{path}.{kind}", PROVIDERS_LATER[kind] + PROVIDER_ADVICE))
        return {"provider": "local", "query": "error_rate"}  # a stand-in: refused anyway
    if kind == "job" and isinstance(options, dict):
        return _job(options, f"{path}.job", errors)
    if kind == "web" and isinstance(options, dict):
        return _web(options, f"{path}.web", errors)
    if kind != "prometheus" or not isinstance(options, dict):
        return {"provider": value}
    out: dict[str, Any] = {"provider": "prometheus"}
    for key, inner in options.items():
        if key in PROMETHEUS_KEYS:
            out[key] = inner
        elif key in PROMETHEUS_LATER:
            errors.append(FieldError(f"{path}.prometheus.{key}", PROMETHEUS_LATER[key]))
        else:
            errors.append(FieldError(f"{path}.prometheus.{key}", f"unknown key {show(key)}"))
    return out


def _web(options: dict[str, Any], path: str, errors: list[FieldError]) -> dict[str, Any]:
    out: dict[str, Any] = {"provider": "web", "query": "$"}  # no jsonPath: the whole answer
    for key, inner in options.items():
        if key in WEB_KEYS:
            out[WEB_KEYS[key]] = inner
        elif key == "method" and inner == "GET":
            continue
        elif key in WEB_LATER:
            errors.append(FieldError(f"{path}.{key}", WEB_LATER[key]))
        else:
            errors.append(FieldError(f"{path}.{key}", f"unknown key {show(key)}"))
    if "url" not in options:
        errors.append(FieldError(f"{path}.url", "is required: the JSON endpoint's URL"))
    return out


def _job(options: dict[str, Any], path: str, errors: list[FieldError]) -> dict[str, Any]:
    """Argo's ``job: {spec: <a Kubernetes Job spec>}`` as our job metric: its one container's
    ``command`` + ``args`` as the command (``query``), its ``env`` values as ``env``, its
    ``image`` as ``image``, and the Job's ``backoffLimit`` and ``activeDeadlineSeconds`` as
    ``backoff_limit`` and ``timeout``. A Kubernetes target runs it as a Job of that image; the
    local fleet runs the command as a process on its host (the image is not used there)."""
    out: dict[str, Any] = {"provider": "job", "query": "true"}  # a stand-in if refused
    where = f"{path}.spec.template.spec.containers"
    spec = options.get("spec") if isinstance(options.get("spec"), dict) else {}
    pod = (spec.get("template") or {}).get("spec") if isinstance(spec.get("template"), dict) else {}
    containers = pod.get("containers") if isinstance(pod, dict) else None
    if not isinstance(containers, list) or len(containers) != 1:
        errors.append(
            FieldError(where, "must hold exactly one container (its command is what runs here)")
        )
        return out
    container = containers[0] if isinstance(containers[0], dict) else {}
    command = [*(container.get("command") or []), *(container.get("args") or [])]
    if not all(isinstance(word, str | int | float) for word in command) or (
        not command and not container.get("image")
    ):
        errors.append(
            FieldError(
                f"{where}[0].command",
                "is required without an image: give the command (and args) to run, or the "
                "image whose entrypoint a Kubernetes target's Job runs",
            )
        )
        return out
    env: dict[str, Any] = {}
    for index, item in enumerate(container.get("env") or []):
        ref = (item.get("valueFrom") or {}).get("secretKeyRef") if isinstance(item, dict) else None
        if isinstance(item, dict) and isinstance(item.get("name"), str) and "value" in item:
            env[item["name"]] = item["value"]
        elif isinstance(item, dict) and isinstance(item.get("name"), str) and isinstance(ref, dict):
            # the Job reads the Secret itself (Kubernetes targets): only the reference is kept
            env[item["name"]] = {"secret": {"name": ref.get("name"), "key": ref.get("key")}}
        else:
            errors.append(
                FieldError(
                    f"{where}[0].env[{index}]",
                    "only env entries with a value or valueFrom.secretKeyRef are supported",
                )
            )
    if command:
        out["query"] = shlex.join(map(str, command))
    else:
        del out["query"]  # the image's entrypoint
    if env:
        out["env"] = env
    if container.get("image") is not None:
        out["image"] = container["image"]
    for key, ours in (("backoffLimit", "backoff_limit"), ("activeDeadlineSeconds", "timeout")):
        if spec.get(key) is not None:
            out[ours] = spec[key]
    return out


def _unique(errors: list[FieldError]) -> list[FieldError]:
    seen, out = set(), []
    for error in errors:
        if (error.path, error.message) not in seen:
            seen.add((error.path, error.message))
            out.append(error)
    return out
