"""The ``canary`` spec: reading it, wording its steps, translating Argo Rollouts' canary steps.

Ours::

    {"kind": "canary",
     "steps": [{"set_weight": 10}, {"pause": {"duration": "5m"}}, {"set_weight": 50},
               {"pause": {}}, {"set_canary_scale": {"replicas": 2}}],
     "stable_replicas": 4, "canary_replicas": "match_weight",
     "route": {"header": "X-Canary", "cookie": "canary", "sticky_key": "header:X-User-Id"},
     "health": {...}, "progress_deadline": "10m"}

Steps: ``set_weight`` (0..100), ``pause`` (``{"duration": "30s"}``, or ``{}`` until promoted),
``set_canary_scale`` (``{"replicas": n}``, ``{"weight": pct}`` of ``stable_replicas``, or
``{"match_traffic_weight": true}`` to follow the weight again) and ``analysis``
(``{"template": "error-rate", "args": {...}}``: the canary is measured against the old release
until the run decides -- pass: next step; fail: roll back; inconclusive: wait for a person; see
``strategies.spec_analysis``). A top-level ``analysis`` (``{"template", "args", "start_at_step"}``)
is background analysis: it starts when step ``start_at_step`` (0-based, default 0) begins and
runs until the new release takes 100%, rolling back whenever it fails. ``canary_replicas`` is
``"match_weight"``
(the default: ceil(stable_replicas * weight / 100), at least 1 while the weight is above 0) or a
fixed count. ``route`` sends requests carrying the header or cookie with value ``always`` to the
new release and ``never`` to the old one whatever the weight; ``sticky_key``
(``"header:NAME"`` or ``"cookie:NAME"``) places requests by a hash of that key.

Steps ``set_header_route`` and ``set_mirror_route`` are read by ``strategies.spec_routes``, and
``experiment`` (a fresh baseline and canary side by side, with their analyses) by
``strategies.spec_experiment``.
Argo Rollouts' ``{"canary": {...}}`` is translated into this spec by ``strategies.argo_canary``.
"""

from __future__ import annotations

import math
import re
from typing import Any

from strategies import spec_analysis, spec_experiment, spec_routes
from strategies.durations import format_duration
from strategies.fields import FieldError, Fields, duration, show, whole
from strategies.readers import instances, read_health, read_progress_deadline, read_replicas

STEP_TYPES = (
    "set_weight",
    "pause",
    "set_canary_scale",
    "analysis",
    "set_header_route",
    "set_mirror_route",
    "experiment",
)
SCALE_KEYS = ("replicas", "weight", "match_traffic_weight")
TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
STICKY = re.compile(r"(header|cookie):(.+)")
STEPS_EXAMPLE = '[{"set_weight": 10}, {"pause": {"duration": "1m"}}, {"set_weight": 50}]'


def share(replicas: int, weight: int) -> int:
    """Instances for ``weight``% of ``replicas``: rounded up, at least 1 above 0%."""
    if weight <= 0:
        return 0
    return max(1, math.ceil(replicas * weight / 100))


def canary_size(spec: dict[str, Any], weight: int, scale: dict[str, Any] | None) -> int:
    """How many instances the new release runs at ``weight``% with the ``set_canary_scale``
    in force (None: the spec's ``canary_replicas``)."""
    stable = spec["stable_replicas"]
    if scale is not None:
        if "replicas" in scale:
            return scale["replicas"]
        if "weight" in scale:
            return share(stable, scale["weight"])
        return share(stable, weight)
    if spec["canary_replicas"] == "match_weight":
        return share(stable, weight)
    return spec["canary_replicas"]


def read(fields: Fields) -> dict[str, Any]:
    if "replicas" in fields.raw:
        fields.seen.add("replicas")
        fields.error(
            "replicas",
            "unknown key 'replicas': a canary sizes its sides with 'stable_replicas' and "
            "'canary_replicas'",
        )
    return {
        "steps": _read_steps(fields),
        "stable_replicas": read_replicas(fields, "stable_replicas"),
        "canary_replicas": fields.take("canary_replicas", "match_weight", _canary_replicas),
        "route": _read_route(fields),
        "analysis": _read_background(fields),
        "min_ready": fields.take("min_ready", 0.0, duration(positive=False)),
        "progress_deadline": read_progress_deadline(fields),
        "health": read_health(fields),
        **(
            {"webhooks": fields.take("webhooks", [], _webhooks)} if "webhooks" in fields.raw else {}
        ),
    }


HOOK_TYPES = ("event", "post-rollout")
HOOK_FIELDS = {"type", "name", "url", "timeout", "metadata", "canary", "namespace"}


def _webhooks(value: Any) -> list[dict[str, Any]]:
    """Converter: the hooks told about the deployment (Flagger's ``event`` hooks: every event;
    ``post-rollout``: its outcome), each ``{"type", "name", "url", "timeout", "metadata",
    "canary", "namespace"}`` (``strategies.flagger`` writes them; ``notifications.webhooks``
    calls them)."""
    if not isinstance(value, list):
        raise ValueError(f"must be a list of webhooks, got {show(value)}")
    out = []
    for hook in value:
        if (
            not isinstance(hook, dict)
            or hook.get("type") not in HOOK_TYPES
            or not isinstance(hook.get("url"), str)
            or not re.match(r"https?://", hook["url"])
            or set(hook) - HOOK_FIELDS
        ):
            raise ValueError(
                "each must be like {type: event | post-rollout, url: http://...}, "
                f"got {show(hook)}"
            )
        timeout = duration(positive=True)(hook.get("timeout", 10))
        out.append(
            {
                "type": hook["type"],
                "name": str(hook.get("name") or hook["type"]),
                "url": hook["url"],
                "timeout": min(timeout, 60.0),
                "metadata": {str(k): str(v) for k, v in (hook.get("metadata") or {}).items()},
                "canary": str(hook.get("canary") or ""),
                "namespace": str(hook.get("namespace") or ""),
            }
        )
    return out


def background_of(spec: dict[str, Any]) -> dict[str, Any] | None:
    """The background analysis of a normalised canary spec, None if it has none."""
    return spec.get("analysis")


def steps(spec: dict[str, Any]) -> list[str]:
    out = []
    weight, scale = 0, None
    stable = spec["stable_replicas"]
    for step in spec["steps"]:
        if "analysis" in step:
            words = spec_analysis.words(step["analysis"])
            out.append(f"{words}: the new release against the old one (fail: roll back)")
            continue
        if "set_header_route" in step or "set_mirror_route" in step:
            out.append(spec_routes.words(step))
            continue
        if "experiment" in step:
            out.append(spec_experiment.words(step["experiment"]))
            continue
        if "set_weight" in step:
            weight = step["set_weight"]
            count = canary_size(spec, weight, scale)
            out.append(
                f"set weight {weight}%: {instances(count)} of the new release, "
                f"{stable} of the old one"
            )
        elif "pause" in step:
            seconds = step["pause"].get("duration")
            out.append("pause until promoted" if seconds is None else f"pause {_dur(seconds)}")
        else:
            scale = step["set_canary_scale"]
            count = canary_size(spec, weight, scale)
            out.append(f"scale the new release to {instances(count)} ({_scale_words(scale)})")
    background = background_of(spec)
    if background is not None and background["start_at_step"] < len(out):
        at = background["start_at_step"]
        out[at] += f"; background {spec_analysis.words(background)} starts, until promotion"
    out.append(
        f"promote: {instances(stable)} of the new release take 100%, "
        "then the old release is scaled down"
    )
    return out


def _read_steps(fields: Fields) -> list[dict[str, Any]] | None:
    fields.seen.add("steps")
    if "steps" not in fields.raw:
        fields.error("steps", f"is required: a list like {STEPS_EXAMPLE}")
        return None
    raw = fields.raw["steps"]
    if not isinstance(raw, list) or not raw:
        fields.error("steps", f"must be a non-empty list like {STEPS_EXAMPLE}, got {show(raw)}")
        return None
    errors = fields.errors
    out = []
    for index, step in enumerate(raw):
        path = f"{fields.path('steps')}[{index}]"
        if not isinstance(step, dict) or len(step) != 1:
            names = ", ".join(show(name) for name in STEP_TYPES)
            errors.append(
                FieldError(
                    path, f"must be an object with one key, one of {names}; got {show(step)}"
                )
            )
            continue
        ((key, value),) = step.items()
        where = f"{path}.{key}"
        if key == "set_weight":
            out.append({"set_weight": _convert(weight, value, where, errors)})
        elif key == "pause":
            out.append({"pause": _read_pause(value, where, errors)})
        elif key == "set_canary_scale":
            out.append({"set_canary_scale": _read_scale(value, where, errors)})
        elif key == "analysis":
            out.append({"analysis": spec_analysis.read_ref(value, where, errors)})
        elif key == "set_header_route":
            out.append({key: spec_routes.read_header_route(value, where, errors)})
        elif key == "set_mirror_route":
            out.append({key: spec_routes.read_mirror_route(value, where, errors)})
        elif key == "experiment":
            out.append({key: spec_experiment.read(value, where, errors)})
            _check_experiment_weight(out, where, errors)
        else:
            names = ", ".join(show(name) for name in STEP_TYPES)
            errors.append(FieldError(where, f"unknown step type {show(key)}: use one of {names}"))
    return out


def _check_experiment_weight(steps: list[dict[str, Any]], path: str, errors: list[FieldError]):
    """The experiment just read (the last of ``steps``) takes its share from the old release's:
    with the weight the steps before it set, it may not take more than there is."""
    experiment = steps[-1]["experiment"]
    if experiment is None:
        return
    weight = 0
    for step in steps[:-1]:
        if isinstance(step.get("set_weight"), int):
            weight = step["set_weight"]
    taken = spec_experiment.weight_of(experiment)
    if weight + taken > 100:
        errors.append(
            FieldError(
                f"{path}.templates",
                f"weights add up to {taken}%, with the new release's {weight}% more than 100%: "
                f"give the experiment at most {100 - weight}% in all",
            )
        )


def _read_pause(value: Any, path: str, errors: list[FieldError]) -> dict[str, Any] | None:
    if not isinstance(value, dict):
        message = "must be an object: {} to wait until promoted or {'duration': '5m'}"
        errors.append(FieldError(path, f"{message}, got {show(value)}"))
        return None
    pause = Fields(value, path, errors)
    seconds = pause.take("duration", None, duration(positive=False))
    pause.finish()
    return {} if seconds is None else {"duration": seconds}


def _read_scale(value: Any, path: str, errors: list[FieldError]) -> dict[str, Any] | None:
    names = ", ".join(show(name) for name in SCALE_KEYS)
    if not isinstance(value, dict):
        errors.append(FieldError(path, f"must be an object with one of {names}, got {show(value)}"))
        return None
    scale = Fields(value, path, errors)
    out = {
        "replicas": scale.take("replicas", None, whole(0)),
        "weight": scale.take("weight", None, weight),
        "match_traffic_weight": scale.take("match_traffic_weight", None, _true),
    }
    scale.finish()
    given = [key for key in SCALE_KEYS if key in value]
    if len(given) != 1:
        got = ", ".join(show(key) for key in given) or "none"
        errors.append(FieldError(path, f"must set exactly one of {names}; got {got}"))
        return None
    return {given[0]: out[given[0]]}


def _read_route(fields: Fields) -> dict[str, Any] | None:
    route = fields.nested("route")
    if route is None:
        return None
    out = {
        "header": route.take("header", None, _token("a header name like 'X-Canary'")),
        "cookie": route.take("cookie", None, _token("a cookie name like 'canary'")),
        "sticky_key": route.take("sticky_key", None, _sticky_key),
    }
    route.finish()
    return out


def weight(value: Any) -> int:
    """Converter: a traffic weight, a whole number 0..100."""
    try:
        number = whole(0)(value)
    except ValueError:
        raise ValueError(f"must be a whole number between 0 and 100, got {show(value)}") from None
    if number > 100:
        raise ValueError(f"must be between 0 and 100, got {show(value)}")
    return number


def _canary_replicas(value: Any) -> int | str:
    if value == "match_weight":
        return value
    try:
        return whole(1)(value)
    except ValueError:
        raise ValueError(
            f"must be 'match_weight' or a whole number >= 1, got {show(value)}"
        ) from None


def _true(value: Any) -> bool:
    if value is not True:
        raise ValueError(f"must be true (leave the step out to keep the scale), got {show(value)}")
    return True


def _token(what: str):
    def convert(value: Any) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str) or not TOKEN.fullmatch(value):
            raise ValueError(f"must be {what}, got {show(value)}")
        return value

    return convert


def _sticky_key(value: Any) -> str | None:
    if value is None:
        return None
    match = STICKY.fullmatch(value) if isinstance(value, str) else None
    if match is None or not TOKEN.fullmatch(match.group(2)):
        raise ValueError(
            f"must be 'header:NAME' or 'cookie:NAME' (e.g. 'header:X-User-Id'), got {show(value)}"
        )
    return value


def _convert(convert, value: Any, path: str, errors: list[FieldError]) -> Any:
    try:
        return convert(value)
    except ValueError as exc:
        errors.append(FieldError(path, str(exc)))
        return None


def _scale_words(scale: dict[str, Any]) -> str:
    if "replicas" in scale:
        return "a fixed count"
    if "weight" in scale:
        return f"{scale['weight']}% of the old release's size"
    return "matching its traffic weight"


def _dur(seconds: float) -> str:
    return format_duration(seconds)


def _read_background(fields: Fields) -> dict[str, Any] | None:
    fields.seen.add("analysis")
    if "analysis" not in fields.raw or fields.raw["analysis"] is None:
        return None
    path = fields.path("analysis")
    ref = spec_analysis.read_ref(fields.raw["analysis"], path, fields.errors, background=True)
    steps = fields.raw.get("steps")
    at = ref.get("start_at_step") if ref else None
    if isinstance(steps, list) and steps and isinstance(at, int) and at >= len(steps):
        fields.errors.append(
            FieldError(
                f"{path}.start_at_step",
                f"must be the index of a step (0 to {len(steps) - 1}), got {at}",
            )
        )
    return ref
