"""Analysis templates: what to measure, how often, and how to judge it.

    {"args": [{"name": "max-error-rate", "value": "0.05"}],
     "metrics": [
       {"name": "errors", "provider": "local", "query": "error_rate", "test": "sequential",
        "interval": "1s", "count": 60},
       {"name": "latency", "provider": "local", "query": "latency", "test": "mann_whitney",
        "direction": "increase", "interval": "5s", "count": 12, "unit": "ms"},
       {"name": "error-ceiling", "provider": "prometheus", "address": "http://127.0.0.1:9090",
        "query": "sum(rate(http_errors{slot=\\"{{slot}}\\"}[1m]))", "statistic": "last",
        "failure_condition": "canary > {{args.max-error-rate}}"}],
     "judge": {"pass_score": 95, "marginal_score": 75, "groups": {"errors": 60, "latency": 40}}}

``normalise(raw)`` validates a template (every problem, by path) and fills in every default, so a
stored template says exactly what will run. Argo Rollouts' spelling of metric keys
(``successCondition``, ``failureLimit``, ``initialDelay``, ``dryRun``, ``provider: {prometheus:
{address, query}}``...) is accepted and translated.

Queries are templates: ``{{args.NAME}}`` is an argument of the template (declared in ``args``,
given when the analysis starts, or its default ``value``), and ``{{slot}}``, ``{{version}}``,
``{{target}}``, ``{{service}}``, ``{{environment}}``, ``{{window}}`` (the seconds since the window
began, as "42s"), ``{{interval}}`` are filled in per arm (baseline or canary) at each
measurement. Conditions may use arguments too (``canary < {{args.max-error-rate}}``); they are
checked once the arguments are known.

A ``job`` metric's ``query`` is its command; it may also say how it runs: ``env`` (names to
values, the process's or container's environment), and for a Kubernetes target the Job's
``image``, ``backoff_limit`` (default 0) and ``timeout`` (its ``activeDeadlineSeconds``; default
the ``JOB_METRICS_TIMEOUT`` setting, which also bounds a local process).
"""

from __future__ import annotations

import re
from typing import Any

from strategies.analysis import expr
from strategies.fields import FieldError, Fields, SpecError, duration, show, whole

PROVIDERS = ("local", "prometheus", "cloudwatch", "web", "job", "webhook")
LOCAL_QUERIES = ("error_rate", "latency", "requests")
TESTS = ("sequential", "quantile", "mann_whitney", "threshold")
STATISTICS = ("rate", "mean", "p50", "p95", "p99", "last", "sum", "count")
DIRECTIONS = ("increase", "decrease", "either")
BUILTIN_ARGS = ("slot", "version", "target", "service", "environment", "window", "interval")
PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_.\-]+)\s*\}\}")
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,62}")
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]{0,252}")

DEFAULTS: dict[str, Any] = {
    "interval": 5.0,
    "count": None,  # None: measure until the analysis is stopped (background analysis)
    "initial_delay": 0.0,
    "failure_limit": 0,
    "inconclusive_limit": 0,
    "consecutive_error_limit": 4,
    # Argo's consecutiveSuccessLimit: the metric succeeds (and stops measuring) once this many
    # measurements in a row succeed; 0: off
    "consecutive_success_limit": 0,
    # Argo's measurementRetention: how many of a metric's latest measurements are stored (the
    # counts that judge it are kept whole); None: every one
    "measurement_retention": None,
    "dry_run": False,
    "min_samples": None,  # local provider and request counts: 50; Prometheus values: 1 / 5
    # how long an undecided metric may keep looking past its ``count`` (sequential, quantile)
    "max_duration": 300.0,
    # non-inferiority margins (sequential: absolute error-rate points, or ``margin_ratio``;
    # quantile: the relative shift of ``percentile`` still tolerated)
    "margin": None,  # sequential 0.01 (1 point), quantile 0.2 (20%)
    "margin_ratio": None,
    "percentile": 0.95,
    # Mann-Whitney (Kayenta's NetflixACAJudge)
    "direction": "increase",
    "confidence": None,  # Mann-Whitney 0.98 (two-sided interval); sequential, quantile 0.95
    "tolerance": 0.25,
    "allowed_increase": 1.1,
    "allowed_decrease": 0.9,
    "nan_strategy": "remove",
    "outliers": "keep",
    # sequential error-rate and latency tests: the false-rollback bound of a whole run
    "alpha": 0.005,
    "null_ratio": 1.0,
}
MARGINS = {"sequential": 0.01, "quantile": 0.2}
# the error-rate test also passes within this odds ratio of the baseline's: the tolerated
# regression is 1 point or the baseline's own rate again, whichever is larger (docs/analysis.md,
# "Defaults, and why": a 1-point margin on a service failing 3% cannot be shown in 5 minutes)
MARGIN_RATIOS = {"sequential": 2.0}
CONFIDENCE = {"mann_whitney": 0.98, "sequential": 0.95, "quantile": 0.95}
JUDGE_DEFAULTS = {"pass_score": 95.0, "marginal_score": 75.0, "groups": {}}
ARGO_KEYS = {
    "successCondition": "success_condition",
    "failureCondition": "failure_condition",
    "failureLimit": "failure_limit",
    "inconclusiveLimit": "inconclusive_limit",
    "consecutiveErrorLimit": "consecutive_error_limit",
    "consecutiveSuccessLimit": "consecutive_success_limit",
    "initialDelay": "initial_delay",
    "dryRun": "dry_run",
    "minSamples": "min_samples",
}


class TemplateError(SpecError):
    def __str__(self) -> str:
        count = len(self.errors)
        head = f"invalid analysis template ({count} error{'' if count == 1 else 's'})"
        return head + ": " + "; ".join(str(error) for error in self.errors)


def _choice(options: tuple[str, ...]):
    def convert(value: Any) -> str:
        if value not in options:
            raise ValueError(f"must be one of {', '.join(options)}, got {show(value)}")
        return value

    return convert


def _text(max_length: int):
    def convert(value: Any) -> str:
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"must be a non-empty string, got {show(value)}")
        if len(value) > max_length:
            raise ValueError(f"must be at most {max_length} characters")
        return value.strip()

    return convert


def _number(low: float, high: float, *, open_low: bool = False):
    def convert(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"must be a number, got {show(value)}")
        if value < low or value > high or (open_low and value == low):
            bound = f"> {low:g}" if open_low else f">= {low:g}"
            raise ValueError(f"must be {bound} and <= {high:g}, got {show(value)}")
        return float(value)

    return convert


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"must be true or false, got {show(value)}")
    return value


def _optional_count(value: Any) -> int | None:
    return None if value is None else whole(1)(value)


def _argo_metric(raw: dict) -> dict:
    """Argo Rollouts' metric spelling -> ours (unknown keys are left for the reader to refuse)."""
    out = {ARGO_KEYS.get(key, key): value for key, value in raw.items()}
    provider = out.get("provider")
    if isinstance(provider, dict) and len(provider) == 1:
        ((name, options),) = provider.items()
        if isinstance(options, dict):
            out["provider"] = name
            for key in ("address", "query"):
                if key in options:
                    out.setdefault(key, options[key])
    return out


def normalise(raw: Any) -> dict[str, Any]:
    """The template with every default filled in; raises TemplateError listing every problem."""
    if not isinstance(raw, dict):
        raise TemplateError([FieldError("", f"must be an object, got {show(raw)}")])
    errors: list[FieldError] = []
    top = Fields(raw, "", errors)
    args = _args(top, errors)
    declared = {a["name"] for a in args or []}
    metrics = _metrics(top, errors, declared)
    secrets = {a["name"] for a in args or [] if a.get("secret")}
    for index, metric in enumerate(metrics):
        for key in ("success_condition", "failure_condition"):
            for name in PLACEHOLDER.findall(metric.get(key) or ""):
                if name.startswith("args.") and name[5:] in secrets:
                    errors.append(
                        FieldError(
                            f"metrics[{index}].{key}",
                            f"{{{{{name}}}}} is a secret: use it in a query or address only "
                            "(a condition is stored with the run)",
                        )
                    )
    judge = _judge(top, errors)
    top.finish()
    if errors:
        raise TemplateError(errors)
    names = [m["name"] for m in metrics]
    for metric in metrics:
        group = metric["group"]
        if judge["groups"] and group not in judge["groups"]:
            errors.append(
                FieldError(
                    f"metrics[{names.index(metric['name'])}].group",
                    f"group {group!r} has no weight in judge.groups ({', '.join(judge['groups'])})",
                )
            )
    if errors:
        raise TemplateError(errors)
    return {"args": args, "metrics": metrics, "judge": judge}


def _args(top: Fields, errors: list[FieldError]) -> list[dict]:
    raw = top.take("args", [], lambda v: v)
    if not isinstance(raw, list):
        top.error("args", f"must be a list of {{name, value}} objects, got {show(raw)}")
        return []
    out, seen = [], set()
    for index, item in enumerate(raw):
        path = f"args[{index}]"
        if not isinstance(item, dict):
            errors.append(FieldError(path, f"must be an object, got {show(item)}"))
            continue
        fields = Fields(item, path, errors)
        name = fields.take("name", None, _name)
        value = fields.take("value", None, _arg_value)  # None: required when the run starts
        secret = fields.take("secret", None, _secret)
        fields.finish()
        if secret is not None and value is not None:
            errors.append(FieldError(f"{path}.secret", "give 'value' or 'secret', not both"))
            continue
        if name is None:
            if "name" not in item:
                errors.append(FieldError(f"{path}.name", "is required"))
            continue
        if name in seen or name in BUILTIN_ARGS:
            what = "a built-in argument" if name in BUILTIN_ARGS else "declared twice"
            errors.append(FieldError(f"{path}.name", f"{name!r} is {what}"))
            continue
        seen.add(name)
        out.append({"name": name, "value": value, **({"secret": secret} if secret else {})})
    return out


def secret_args(template: dict) -> dict[str, dict[str, str]]:
    """The template's arguments read from the secret store: name -> {"name", "key"}."""
    return {a["name"]: a["secret"] for a in template.get("args") or [] if a.get("secret")}


def _secret(value: Any) -> dict[str, str] | None:
    """Converter: where a secret argument is read, ``{"name": "token", "key": "api-key"}``
    (Argo's ``secretKeyRef``); its value is read when a measurement is taken, never stored."""
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) != {"name", "key"}:
        raise ValueError(f'must be like {{"name": "token", "key": "api-key"}}, got {show(value)}')
    for part in ("name", "key"):
        text = value[part]
        if not isinstance(text, str) or not re.fullmatch(
            r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,252}", text
        ):
            raise ValueError(f"{part} must be a secret's {part} (letters, digits, '-', '_', '.')")
    return {"name": value["name"], "key": value["key"]}


def _env(value: Any) -> dict[str, Any]:
    """A job's environment: names to values (strings or numbers), or to a Kubernetes Secret's
    key, ``{"secret": {"name", "key"}}``, which a Kubernetes target's Job reads itself (its
    ``valueFrom.secretKeyRef``): the value never passes through Switchyard."""
    if not isinstance(value, dict):
        raise ValueError(f'must be an object like {{"MODE": "smoke"}}, got {show(value)}')
    out: dict[str, Any] = {}
    for name, item in value.items():
        if not isinstance(name, str) or not ENV_NAME.fullmatch(name):
            raise ValueError(f"{show(name)} is not an environment variable's name")
        if isinstance(item, dict) and set(item) == {"secret"}:
            try:
                out[name] = {"secret": _secret(item["secret"])}
            except ValueError as exc:
                raise ValueError(f"{name}.secret: {exc}") from None
            continue
        if isinstance(item, bool) or not isinstance(item, str | int | float):
            raise ValueError(
                f'{name} must be a string, a number or {{"secret": {{"name", "key"}}}}, '
                f"got {show(item)}"
            )
        out[name] = str(item)
    return out


def _name(value: Any) -> str:
    if not isinstance(value, str) or not NAME.fullmatch(value):
        raise ValueError(
            f"must be 1-63 letters, digits, '-', '_' or '.', starting with a letter or digit, "
            f"got {show(value)}"
        )
    return value


def _arg_value(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"must be a string or a number, got {show(value)}")
    text = str(value)
    if len(text) > 8000:  # Flagger's webhooks travel as one JSON argument
        raise ValueError("must be at most 8000 characters")
    return text


def _metrics(top: Fields, errors: list[FieldError], declared: set[str]) -> list[dict]:
    top.seen.add("metrics")
    raw = top.raw.get("metrics")
    if not isinstance(raw, list) or not raw:
        top.error("metrics", f"must be a non-empty list of metrics, got {show(raw)}")
        return []
    out, seen = [], set()
    for index, item in enumerate(raw):
        path = f"metrics[{index}]"
        if not isinstance(item, dict):
            errors.append(FieldError(path, f"must be an object, got {show(item)}"))
            continue
        metric = _metric(_argo_metric(item), path, errors, declared)
        if metric is None:
            continue
        if metric["name"] in seen:
            errors.append(FieldError(f"{path}.name", f"{metric['name']!r} is used twice"))
        seen.add(metric["name"])
        out.append(metric)
    return out


def _metric(raw: dict, path: str, errors: list[FieldError], declared: set[str]) -> dict | None:
    before = len(errors)
    raw = {k: v for k, v in raw.items() if v is not None}  # null: the default (normalised twice)
    f = Fields(raw, path, errors)
    m: dict[str, Any] = {
        "name": f.take("name", None, _name),
        "provider": f.take("provider", "local", _choice(PROVIDERS)),
        "query": f.take("query", None, _text(4000)),
        "total_query": f.take("total_query", None, _text(4000)),
        "address": f.take("address", None, _text(500)),
        "test": f.take("test", None, _choice(TESTS)),
        "statistic": f.take("statistic", None, _choice(STATISTICS)),
        "unit": f.take("unit", "", lambda v: "" if v == "" else _text(20)(v)),
        "interval": f.take("interval", DEFAULTS["interval"], duration(positive=True)),
        "count": f.take("count", DEFAULTS["count"], _optional_count),
        "initial_delay": f.take(
            "initial_delay", DEFAULTS["initial_delay"], duration(positive=False)
        ),
        # -1 (Argo): failures never fail the metric (with consecutive_success_limit)
        "failure_limit": f.take("failure_limit", DEFAULTS["failure_limit"], whole(-1)),
        "inconclusive_limit": f.take(
            "inconclusive_limit", DEFAULTS["inconclusive_limit"], whole(0)
        ),
        "consecutive_error_limit": f.take(
            "consecutive_error_limit", DEFAULTS["consecutive_error_limit"], whole(0)
        ),
        "consecutive_success_limit": f.take(
            "consecutive_success_limit", DEFAULTS["consecutive_success_limit"], whole(0)
        ),
        "measurement_retention": f.take(
            "measurement_retention", DEFAULTS["measurement_retention"], _optional_count
        ),
        "dry_run": f.take("dry_run", DEFAULTS["dry_run"], _boolean),
        "min_samples": f.take("min_samples", DEFAULTS["min_samples"], _optional_count),
        "success_condition": f.take("success_condition", None, _text(500)),
        "failure_condition": f.take("failure_condition", None, _text(500)),
        "critical": f.take("critical", None, _boolean),
        "group": f.take("group", None, _name),
        "direction": f.take("direction", DEFAULTS["direction"], _choice(DIRECTIONS)),
        "confidence": f.take("confidence", DEFAULTS["confidence"], _number(0.5, 0.9999)),
        "max_duration": f.take("max_duration", DEFAULTS["max_duration"], duration(positive=True)),
        "margin": f.take("margin", DEFAULTS["margin"], _number(0, 10)),
        "margin_ratio": f.take("margin_ratio", DEFAULTS["margin_ratio"], _number(1, 1e6)),
        "percentile": f.take("percentile", DEFAULTS["percentile"], _number(0.5, 0.999)),
        "tolerance": f.take("tolerance", DEFAULTS["tolerance"], _number(0, 10)),
        "allowed_increase": f.take(
            "allowed_increase", DEFAULTS["allowed_increase"], _number(1, 1e6)
        ),
        "allowed_decrease": f.take("allowed_decrease", DEFAULTS["allowed_decrease"], _number(0, 1)),
        "nan_strategy": f.take(
            "nan_strategy", DEFAULTS["nan_strategy"], _choice(("remove", "replace"))
        ),
        "outliers": f.take("outliers", DEFAULTS["outliers"], _choice(("keep", "remove"))),
        "alpha": f.take("alpha", DEFAULTS["alpha"], _number(0, 0.5, open_low=True)),
        "null_ratio": f.take("null_ratio", DEFAULTS["null_ratio"], _number(1, 100)),
        "step": f.take("step", None, duration(positive=True)),
    }
    f.take("max_count", None, lambda v: v)  # derived (count, max_duration): normalised again
    job = {  # how a Kubernetes target runs a job metric's command (kept only when given)
        "image": f.take("image", None, _text(500)),
        "env": f.take("env", None, _env),
        "backoff_limit": f.take("backoff_limit", None, whole(0)),
        "timeout": f.take("timeout", None, duration(positive=True)),
    }
    f.finish()
    if m["name"] is None and "name" not in raw:
        errors.append(FieldError(f"{path}.name", "is required"))
    entrypoint = m["provider"] == "job" and "query" not in raw and raw.get("image")
    if entrypoint:  # a job with an image and no command: a Kubernetes Job runs its entrypoint
        m["query"] = ""
    elif m["query"] is None and "query" not in raw:
        errors.append(FieldError(f"{path}.query", "is required"))
    if len(errors) > before:
        return None

    for key, value in job.items():
        if value is None:
            continue
        if m["provider"] != "job":
            f.error(key, f"only a job metric takes {show(key)}")
        m[key] = value
    if m["provider"] == "job":  # a job passes when its command exits 0 (the observation 1)
        if m["test"] not in (None, "threshold"):
            f.error("test", "a job metric is judged by its exit status: leave 'test' out")
        if not (m["success_condition"] or m["failure_condition"]):
            m["success_condition"] = "canary == 1"
        for key in ("address", "total_query"):
            if m[key] is not None:
                f.error(key, "a job metric takes its command as 'query' only")
    if m["provider"] == "webhook":  # Flagger's webhooks: 1 when they answered 2xx
        if m["query"] not in ("all", "any"):
            f.error("query", f"a webhook metric's query is 'all' or 'any', got {show(m['query'])}")
        for key in ("address", "total_query"):
            if m[key] is not None:
                f.error(key, "a webhook metric takes its hooks as the argument 'hooks'")
    conditions = m["success_condition"] or m["failure_condition"]
    if m["test"] is None:
        if conditions:
            m["test"] = "threshold"
        elif m["provider"] == "local" and m["query"] == "error_rate":
            m["test"] = "sequential"
        elif m["provider"] == "local" and m["query"] == "latency":
            m["test"] = "quantile"
        else:
            m["test"] = "mann_whitney"
    test = m["test"]
    if m["provider"] == "local":
        if m["query"] not in LOCAL_QUERIES:
            f.error(
                "query",
                f"the local provider knows {', '.join(LOCAL_QUERIES)}, got {show(m['query'])}",
            )
        if m["address"] is not None:
            f.error("address", "only the prometheus provider takes an address")
        if m["total_query"] is not None:
            f.error("total_query", "only the prometheus provider takes a total_query")
        if test == "sequential" and m["query"] != "error_rate":
            f.error("test", "the sequential test needs request counts: use query 'error_rate'")
        if test == "quantile" and m["query"] != "latency":
            f.error("test", "the quantile test needs a latency histogram: use query 'latency'")
    elif test == "sequential" and m["total_query"] is None:
        f.error(
            "total_query",
            "the sequential test needs a query for the errors (query) and one "
            "for all requests (total_query)",
        )
    if test == "threshold":
        if not conditions:
            f.error(
                "success_condition",
                "a threshold metric needs a success_condition or a failure_condition (or both)",
            )
    elif conditions:
        key = "success_condition" if m["success_condition"] else "failure_condition"
        f.error(key, f"conditions belong to threshold metrics; a {test} metric decides by its test")
    for key in ("success_condition", "failure_condition"):
        if m[key]:
            _check_condition(f, key, m[key], declared)
    if m["provider"] == "web":
        _check_web(f, m)
    for name, value in (m.get("env") or {}).items():  # filled in like the command's words
        if isinstance(value, dict):
            continue  # a Secret's key, read by the Job itself
        _check_placeholders(f, f"env.{name}", value, declared, builtins=True)
    for key in ("query", "total_query", "address"):
        if m[key]:
            web_url = key == "address" and m["provider"] == "web"  # per arm, like a query
            _check_placeholders(f, key, m[key], declared, builtins=key != "address" or web_url)
    if m["statistic"] is None:
        counts = m["provider"] == "local" and m["query"] == "error_rate" or test == "sequential"
        last = m["provider"] in ("prometheus", "cloudwatch", "web", "job", "webhook")
        m["statistic"] = "rate" if counts else "last" if last else "mean"
    if m["statistic"] == "rate" and not (m["provider"] == "local" and m["query"] == "error_rate"):
        f.error("statistic", "'rate' needs request counts (the local provider's error_rate)")
    if m["consecutive_success_limit"]:
        if test != "threshold":
            f.error(
                "consecutive_success_limit",
                f"counts successful threshold measurements; a {test} metric decides by its test",
            )
        elif m["count"] is not None and m["consecutive_success_limit"] > m["count"]:
            f.error(
                "consecutive_success_limit",
                f"is more than count ({m['count']}): the metric could never succeed",
            )
    elif m["failure_limit"] < 0:
        f.error(
            "failure_limit",
            "-1 (no failure limit) needs a consecutive_success_limit (else nothing decides)",
        )
    if m["margin_ratio"] is not None and test != "sequential":
        f.error("margin_ratio", "only the sequential error-rate test takes a margin_ratio")
    if m["margin"] is None:
        m["margin"] = MARGINS.get(test)
    if m["margin_ratio"] is None:
        m["margin_ratio"] = MARGIN_RATIOS.get(test)
    if m["confidence"] is None:
        m["confidence"] = CONFIDENCE.get(test, 0.98)
    # an undecided sequential or quantile metric keeps looking after ``count`` up to
    # ``max_duration``; the other tests decide at every look, so they stop at ``count``
    if m["count"] is None:
        m["max_count"] = None
    elif test in ("sequential", "quantile"):
        m["max_count"] = max(m["count"], int(m["max_duration"] // m["interval"]))
    else:
        m["max_count"] = m["count"]
    if m["min_samples"] is None:
        counts = test in ("sequential", "quantile") or m["provider"] == "local"
        m["min_samples"] = 50 if counts else 5 if test == "mann_whitney" else 1
    if m["critical"] is None:
        m["critical"] = test != "mann_whitney"  # Kayenta's metrics are not critical by default
    if m["group"] is None:
        m["group"] = m["name"]
    if m["step"] is None:
        m["step"] = m["interval"]
    if m["unit"] == "" and m["provider"] == "local":
        m["unit"] = (
            {"latency": "ms", "error_rate": "ratio", "requests": "req/s"}[m["query"]]
            if (m["query"] in LOCAL_QUERIES)
            else ""
        )
    if len(errors) > before:
        return None
    return m


def _check_web(f: Fields, m: dict) -> None:
    """A web metric: ``address`` is the endpoint's URL, ``query`` a JSONPath into its answer."""
    address = m["address"]
    if not address:
        f.error("address", "is required: the URL of the JSON endpoint (http:// or https://)")
    elif not re.match(r"https?://[^/\s{}]+|\{\{\s*args\.", address):  # or a whole-URL argument
        f.error("address", f"must be an http:// or https:// URL, got {show(address)}")
    if m["total_query"] is not None:
        f.error("total_query", "only the prometheus provider takes a total_query")
    if m["query"]:
        from jsonpath_ng import parse as parse_path

        path = m["query"].strip()
        if path.startswith("{") and path.endswith("}"):
            path = path[1:-1].strip()
        try:
            parse_path(PLACEHOLDER.sub("x", path))
        except Exception as exc:  # noqa: BLE001 -- jsonpath-ng raises several kinds
            f.error("query", f"is not a JSONPath like '$.data.ok': {exc}")


def _check_condition(f: Fields, key: str, text: str, declared: set[str]) -> None:
    names = [n for n in PLACEHOLDER.findall(text)]
    for name in names:
        if not name.startswith("args.") or name[5:] not in declared:
            f.error(key, f"{{{{{name}}}}} is not a declared argument (use {{{{args.NAME}}}})")
            return
    probe = PLACEHOLDER.sub("1", text)  # arguments are numbers: check the shape now
    try:
        expr.parse(probe)
    except expr.InvalidExpression as exc:
        f.error(key, str(exc))


def _check_placeholders(f: Fields, key: str, text: str, declared: set[str], *, builtins: bool):
    for name in PLACEHOLDER.findall(text):
        if name.startswith("args.") and name[5:] in declared:
            continue
        if builtins and name in BUILTIN_ARGS:
            continue
        known = [f"args.{a}" for a in sorted(declared)] + (list(BUILTIN_ARGS) if builtins else [])
        f.error(
            key, f"unknown placeholder {{{{{name}}}}}: use one of {', '.join(known) or '(none)'}"
        )


def _judge(top: Fields, errors: list[FieldError]) -> dict:
    fields = top.nested("judge")
    if fields is None:
        return dict(JUDGE_DEFAULTS)
    judge = {
        "pass_score": fields.take("pass_score", JUDGE_DEFAULTS["pass_score"], _number(0, 100)),
        "marginal_score": fields.take(
            "marginal_score", JUDGE_DEFAULTS["marginal_score"], _number(0, 100)
        ),
        "groups": fields.take("groups", {}, _groups),
    }
    fields.finish()
    if (
        judge["pass_score"] is not None
        and judge["marginal_score"] is not None
        and judge["marginal_score"] > judge["pass_score"]
    ):
        fields.error("marginal_score", "must not be above pass_score")
    return judge


def _groups(value: Any) -> dict[str, float]:
    if not isinstance(value, dict):
        raise ValueError(f"must be an object of group name -> weight, got {show(value)}")
    out = {}
    for name, weight in value.items():
        _name(name)
        if isinstance(weight, bool) or not isinstance(weight, int | float) or weight < 0:
            raise ValueError(f"the weight of {name!r} must be a number >= 0, got {show(weight)}")
        out[name] = float(weight)
    if out and sum(out.values()) <= 0:
        raise ValueError("the group weights must not all be 0")
    return out


# --- arguments -----------------------------------------------------------------------------------


def resolve_args(template: dict, given: dict[str, Any] | None) -> dict[str, str]:
    """The value of every declared argument: given, else its default; raises TemplateError naming
    each missing or unknown one."""
    given = dict(given or {})
    errors = []
    out = {}
    for arg in template.get("args") or []:
        name = arg["name"]
        if arg.get("secret"):  # read from the secret store at each measurement, never stored
            if name in given:
                given.pop(name)
                errors.append(
                    FieldError(f"args.{name}", "is a secret: it is read from the secret store")
                )
            continue
        if name in given:
            value = given.pop(name)
            try:
                out[name] = _arg_value(value) or ""
            except ValueError as exc:
                errors.append(FieldError(f"args.{name}", str(exc)))
        elif arg.get("value") is not None:
            out[name] = arg["value"]
        else:
            errors.append(FieldError(f"args.{name}", "is required (the template has no default)"))
    for name in given:
        errors.append(FieldError(f"args.{name}", "is not an argument of this template"))
    if errors:
        raise TemplateError(errors)
    return out


def render(text: str, values: dict[str, Any], *, escape=None) -> str:
    """``text`` with ``{{name}}`` placeholders replaced from ``values`` (``args.NAME`` keys for
    arguments); ``escape`` is applied to each value (PromQL string escaping, for example)."""

    def replace(match: re.Match) -> str:
        name = match.group(1)
        if name not in values:
            raise KeyError(name)
        value = str(values[name])
        return escape(value) if escape else value

    return PLACEHOLDER.sub(replace, text)


def bind(template: dict, args: dict[str, str]) -> dict:
    """The template with its arguments written into the conditions (checked again: an argument
    that is not a number makes the condition invalid -> TemplateError)."""
    values = {f"args.{k}": v for k, v in args.items()}
    errors = []
    metrics = []
    for index, metric in enumerate(template["metrics"]):
        metric = dict(metric)
        for key in ("success_condition", "failure_condition"):
            if metric.get(key):
                text = render(metric[key], values)
                try:
                    expr.parse(text)
                except expr.InvalidExpression as exc:
                    errors.append(FieldError(f"metrics[{index}].{key}", f"{text!r} {exc}"))
                metric[key] = text
        metrics.append(metric)
    if errors:
        raise TemplateError(errors)
    return {**template, "metrics": metrics, "bound_args": args}
