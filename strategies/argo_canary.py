"""Argo Rollouts' ``{"canary": {...}}`` translated into our ``canary`` (or ``rolling``) spec.

Steps are translated one by one (``setWeight``, ``pause``, ``setCanaryScale``, ``analysis``,
``setHeaderRoute``, ``setMirrorRoute``, ``experiment``); a step holding several of them (Argo
reads each field of a step) becomes that many of ours, in the order written. A canary without
``steps`` is Argo's rolling update: it becomes our ``rolling`` kind in one batch, limited by
``maxSurge`` / ``maxUnavailable`` (Argo's defaults, 25% each), so it plans and runs like Argo's.

``canaryService``, ``stableService``, ``trafficRouting`` (and its early name
``trafficManagement``), ``canaryMetadata``, ``stableMetadata``, ``antiAffinity`` and ``pingPong``
name Kubernetes objects and pod placement, which the target handles here: accepted and not used.
Every other field of Argo's canary is either translated or refused as unsupported with what to
do instead (``UNSUPPORTED``); only a key Argo does not have either is "unknown".
"""

from __future__ import annotations

from typing import Any

from strategies import spec_analysis, spec_experiment
from strategies.argo import Translation, block_of
from strategies.fields import FieldError, show

STEPS = {
    "setWeight": "set_weight",
    "pause": "pause",
    "setCanaryScale": "set_canary_scale",
    "analysis": "analysis",
    "setHeaderRoute": "set_header_route",
    "setMirrorRoute": "set_mirror_route",
    "experiment": "experiment",
}
SCALE_KEYS = {"matchTrafficWeight": "match_traffic_weight"}
IGNORED = (
    "canaryService",
    "stableService",
    "trafficRouting",
    "trafficManagement",
    "canaryMetadata",
    "stableMetadata",
    "antiAffinity",
    "pingPong",
)
# Argo's defaults for a canary without steps (its rolling update)
ROLLING_DEFAULTS = {"maxSurge": "25%", "maxUnavailable": "25%"}
UNSUPPORTED_STEPS = {
    "plugin": "step plugins are not supported: use 'analysis' or 'pause' steps",
}
UNSUPPORTED = {
    "maxSurge": (
        "applies here only to a canary without steps (Argo's rolling update); with steps the new "
        "release is sized by its weight: use 'setCanaryScale' to size it otherwise"
    ),
    "maxUnavailable": (
        "applies here only to a canary without steps (Argo's rolling update); with steps the old "
        "release stays fully scaled until promotion"
    ),
    "scaleDownDelaySeconds": (
        "is not supported for a canary: the old release is scaled down once the new one takes "
        "100%; use blueGreen's scaleDownDelaySeconds to keep it for a switch back"
    ),
    "scaleDownDelayRevisionLimit": (
        "is not supported: only the release being replaced is kept; remove it"
    ),
    "abortScaleDownDelaySeconds": (
        "is not supported: after an abort the new release is kept for inspection and scaled "
        "down by the rollback; remove it"
    ),
    "dynamicStableScale": (
        "true is not supported: the old release stays fully scaled until promotion, so an abort "
        "only moves traffic back; remove it (false is what happens here)"
    ),
    "minPodsPerReplicaSet": (
        "is not supported: the new release runs at least one instance above 0%; use "
        "'setCanaryScale' for more"
    ),
    "replicaProgressThreshold": (
        "is not supported: a step waits until every instance it asks for is available; remove it"
    ),
}
ARGO_FIELDS = tuple(STEPS) + tuple(UNSUPPORTED_STEPS)  # every step type Argo has
CANARY_FIELDS = ("steps", "analysis", *IGNORED, *UNSUPPORTED)  # every canary field Argo has


def from_argo(raw: dict[str, Any], errors: list[FieldError]) -> Translation | None:
    block = block_of(raw, "canary", errors)
    if block is None:
        return None
    if "steps" not in block:
        return _rolling(raw, block, errors)
    out = Translation({k: v for k, v in raw.items() if k not in ("canary", "replicas")})
    if "replicas" in raw:
        out.move("stable_replicas", raw["replicas"], "replicas", errors)
    for key, value in block.items():
        path = f"canary.{key}"
        if key == "steps":
            out.move("steps", _steps(value, out, errors), path, errors)
        elif key == "analysis":
            background = spec_analysis.from_argo(
                value, path, "analysis", out, errors, background=True
            )
            out.move("analysis", background, path, errors)
        elif key == "dynamicStableScale" and value is False:
            continue
        elif key in UNSUPPORTED:
            errors.append(FieldError(path, UNSUPPORTED[key]))
        elif key not in IGNORED:
            errors.append(FieldError(path, _unknown(key, CANARY_FIELDS)))
    return out


def _rolling(raw: dict[str, Any], block: dict[str, Any], errors: list[FieldError]) -> Translation:
    """A canary without steps: Argo's rolling update, as our ``rolling`` kind in one batch."""
    out = Translation({k: v for k, v in raw.items() if k != "canary"}, kind="rolling")
    out.spec["batch_size"] = "100%"
    for argo_key, ours in (("maxSurge", "max_surge"), ("maxUnavailable", "max_unavailable")):
        out.spec[ours] = block.get(argo_key, ROLLING_DEFAULTS[argo_key])
        out.paths.append((ours, f"canary.{argo_key}"))
    for key, value in block.items():
        path = f"canary.{key}"
        if key in ROLLING_DEFAULTS or key in IGNORED or key == "dynamicStableScale":
            continue
        if key == "analysis":
            ref = spec_analysis.from_argo(value, path, "analysis", out, errors)
            out.move("analysis", ref, path, errors)
        elif key in UNSUPPORTED:
            errors.append(FieldError(path, UNSUPPORTED[key]))
        else:
            errors.append(FieldError(path, _unknown(key, CANARY_FIELDS)))
    return out


def _steps(value: Any, out: Translation, errors: list[FieldError]) -> Any:
    if not isinstance(value, list):
        return value  # our reader reports it (at canary.steps)
    translated: list[Any] = []
    for index, step in enumerate(value):
        if not isinstance(step, dict) or not step:
            out.paths.append((f"steps[{len(translated)}]", f"canary.steps[{index}]"))
            translated.append(step)
            continue
        if "pause" in step and step["pause"] is None and "duration" in step:
            errors.append(
                FieldError(
                    f"canary.steps[{index}].duration",
                    "is not a step type: indent it under 'pause' "
                    f"(pause: {{duration: {show(step['duration'])}}})",
                )
            )
            translated.append({"pause": {}})  # a stand-in: the spec is refused anyway
            continue
        for key, inner in step.items():
            theirs = f"canary.steps[{index}].{key}"
            ours = STEPS.get(key)
            if ours is None:
                if key in UNSUPPORTED_STEPS:
                    message = UNSUPPORTED_STEPS[key]
                else:
                    names = ", ".join(show(name) for name in STEPS)
                    near = [name for name in ARGO_FIELDS if _close(name, key)]
                    hint = f"did you mean {show(near[0])}? Use" if near else "use"
                    message = f"is not a step type of Argo Rollouts: {hint} {names}"
                errors.append(FieldError(theirs, message))
                translated.append({"pause": {}})  # a stand-in: the spec is refused anyway
                continue
            at = f"steps[{len(translated)}]"
            if ours == "analysis":
                inner = spec_analysis.from_argo(inner, theirs, f"{at}.analysis", out, errors)
            elif ours == "pause" and inner is None:
                inner = {}  # Argo reads "pause:" with nothing under it as "until promoted"
            elif ours == "set_canary_scale" and isinstance(inner, dict):
                inner = {SCALE_KEYS.get(k, k): v for k, v in inner.items()}
                for argo_key, our_key in SCALE_KEYS.items():
                    if argo_key in step[key]:
                        out.paths.append((f"{at}.{ours}.{our_key}", f"{theirs}.{argo_key}"))
            elif ours == "experiment":
                inner = spec_experiment.from_argo(inner, theirs, f"{at}.experiment", out, errors)
            elif ours in ("set_header_route", "set_mirror_route"):
                inner = _route_step(ours, inner, theirs, f"{at}.{ours}", out)
            translated.append({ours: inner})
            out.paths.append((f"{at}.{ours}", theirs))
    return translated


def _route_step(ours: str, inner: Any, theirs: str, at: str, out: Translation) -> Any:
    """``setHeaderRoute`` / ``setMirrorRoute``: Argo's match spelling as ours."""
    if not isinstance(inner, dict):
        return inner
    result = dict(inner)
    match = inner.get("match")
    if isinstance(match, list):
        rules = []
        for index, rule in enumerate(match):
            if ours == "set_header_route" and isinstance(rule, dict):
                rule = {
                    {"headerName": "header", "headerValue": "value"}.get(k, k): v
                    for k, v in rule.items()
                }
                for argo_key, our_key in (("headerName", "header"), ("headerValue", "value")):
                    out.paths.append(
                        (f"{at}.match[{index}].{our_key}", f"{theirs}.match[{index}].{argo_key}")
                    )
            rules.append(rule)
        result["match"] = rules
    return result


def _unknown(key: str, known: tuple[str, ...]) -> str:
    near = [name for name in known if name.lower() == key.lower() or _close(name, key)]
    hint = f": did you mean {show(near[0])}?" if near else ""
    return f"unknown key {show(key)} (not a field of Argo Rollouts' canary either){hint}"


def _close(a: str, b: str) -> bool:
    """Two names a typo apart (one letter changed, added, dropped or two swapped)."""
    if abs(len(a) - len(b)) > 1 or a == b:
        return False
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        if len(diff) == 1:
            return True
        return len(diff) == 2 and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]]
    short, long_ = (a, b) if len(a) < len(b) else (b, a)
    return any(long_[:i] + long_[i + 1 :] == short for i in range(len(long_)))
