"""The ``blue_green`` spec: reading it, wording its steps, translating Argo Rollouts' blueGreen.

Ours::

    {"kind": "blue_green", "replicas": 4, "preview_replicas": 1,
     "smoke": [{"path": "/health", "status": 200, "body_contains": "ok"}],
     "auto_promote": "30s", "scale_down_delay": "30s", "health": {...}, "progress_deadline": "10m",
     "pre_promotion_analysis": {"template": "error-rate", "args": {...}},
     "post_promotion_analysis": {"template": "error-ceiling"}}

``preview_replicas`` defaults to ``replicas``; ``smoke`` to none (``status`` defaults to 200);
``auto_promote`` is a duration after the preview passed its smoke checks, or absent / null /
false to wait for a person (true means at once); ``scale_down_delay`` (default 30 s) is how long
the old side stays up after the switch so that a rollback is a switch back.
``pre_promotion_analysis`` (``strategies.spec_analysis``) runs after the smoke checks, with the
preview as its canary side, and must pass before the promotion gate opens (fail: the rollout
fails and nothing was switched; inconclusive: wait for a person); ``post_promotion_analysis`` runs
from the switch, while the old side is kept, and must pass before the old side is scaled down
(fail: switch back). With the local provider the preview takes no user traffic (something must
send it requests on the preview endpoint) and after the switch the old side takes none, so
comparisons with the old release have no baseline there: judge the new release alone
(threshold conditions on ``canary``) or use Prometheus queries.

Argo Rollouts' ``{"blueGreen": {...}}`` is translated: ``previewReplicaCount`` ->
``preview_replicas``, ``scaleDownDelaySeconds`` -> ``scale_down_delay``,
``autoPromotionEnabled: false`` -> wait for a person, else ``autoPromotionSeconds`` (default 0,
Argo's "promote as soon as the preview is ready") -> ``auto_promote``. ``activeService`` and
``previewService`` name Kubernetes Services, which the target manages here, so they are accepted
and not used; ``prePromotionAnalysis`` / ``postPromotionAnalysis`` (``{"templates":
[{"templateName": ...}], "args": [...]}``) become ours; any other key is an error naming it. Our
own keys may sit beside the block (``{"blueGreen": {...}, "replicas": 4, "smoke": [...]}``).
"""

from __future__ import annotations

from typing import Any

from strategies import spec_analysis
from strategies.argo import Translation, block_of, flag
from strategies.durations import format_duration
from strategies.fields import FieldError, Fields, duration, show, url_path, whole
from strategies.readers import instances, read_health, read_progress_deadline, read_replicas

DEFAULT_SCALE_DOWN_DELAY = 30.0
MISSING = object()
# Kubernetes objects and pod placement, which the target handles here: accepted, not used
ARGO_IGNORED = (
    "activeService",
    "previewService",
    "previewMetadata",
    "activeMetadata",
    "antiAffinity",
)
ARGO_UNSUPPORTED = {
    "scaleDownDelayRevisionLimit": "is not supported: only the release being replaced is kept; "
    "remove it",
    "abortScaleDownDelaySeconds": "is not supported: after an abort the preview is kept for "
    "inspection and scaled down by the rollback; remove it",
}
SMOKE_EXAMPLE = '[{"path": "/health", "status": 200}]'
ARGO_ANALYSIS = {
    "prePromotionAnalysis": "pre_promotion_analysis",
    "postPromotionAnalysis": "post_promotion_analysis",
}


def read(fields: Fields) -> dict[str, Any]:
    replicas = read_replicas(fields)
    preview = fields.take("preview_replicas", MISSING, whole(1))
    if preview is MISSING:
        preview = replicas
    elif None not in (preview, replicas) and preview > replicas:
        fields.error(
            "preview_replicas", f"must be at most replicas ({replicas}), got {show(preview)}"
        )
    return {
        "replicas": replicas,
        "preview_replicas": preview,
        "smoke": _read_smoke(fields),
        "auto_promote": fields.take("auto_promote", None, _auto_promote),
        "scale_down_delay": fields.take(
            "scale_down_delay", DEFAULT_SCALE_DOWN_DELAY, duration(positive=False)
        ),
        "pre_promotion_analysis": _read_analysis(fields, "pre_promotion_analysis"),
        "post_promotion_analysis": _read_analysis(fields, "post_promotion_analysis"),
        "min_ready": fields.take("min_ready", 0.0, duration(positive=False)),
        "progress_deadline": read_progress_deadline(fields),
        "health": read_health(fields),
    }


def steps(spec: dict[str, Any]) -> list[str]:
    replicas, preview = spec["replicas"], spec["preview_replicas"]
    smoke = spec["smoke"]
    if smoke:
        checks = ", ".join(f"GET {check['path']} -> {check['status']}" for check in smoke)
        smoke_step = f"smoke checks on the preview: {checks}"
    else:
        smoke_step = "smoke checks on the preview: none configured"
    if spec.get("pre_promotion_analysis"):
        words = spec_analysis.words(spec["pre_promotion_analysis"])
        smoke_step += f"; then pre-promotion {words} of the preview must pass"
    auto = spec["auto_promote"]
    if auto is None:
        gate = "wait for a person to promote"
    elif auto == 0:
        gate = "promote automatically"
    else:
        gate = f"promote automatically after {format_duration(auto)}"
    delay = format_duration(spec["scale_down_delay"])
    keep = f"keep the old release for {delay} (a rollback is a switch back), then scale it down"
    if spec.get("post_promotion_analysis"):
        words = spec_analysis.words(spec["post_promotion_analysis"])
        keep = (
            f"keep the old release for {delay} and until post-promotion {words} passes "
            "(fail: switch back), then scale it down"
        )
    return [
        f"start {instances(preview)} of the new release on the idle side, as a preview",
        smoke_step,
        gate,
        f"scale the new release to {instances(replicas)}",
        "switch 100% of traffic to the new release at once",
        keep,
    ]


def from_argo(raw: dict[str, Any], errors: list[FieldError]) -> Translation | None:
    block = block_of(raw, "blueGreen", errors)
    if block is None:
        return None
    out = Translation({k: v for k, v in raw.items() if k != "blueGreen"})
    enabled, seconds = True, MISSING
    for key, value in block.items():
        path = f"blueGreen.{key}"
        if key == "previewReplicaCount":
            out.move("preview_replicas", value, path, errors)
        elif key == "scaleDownDelaySeconds":
            out.move("scale_down_delay", value, path, errors)
        elif key == "autoPromotionSeconds":
            seconds = value
        elif key == "autoPromotionEnabled":
            enabled = flag(value, path, errors) is not False
        elif key in ARGO_ANALYSIS:
            ours = ARGO_ANALYSIS[key]
            out.move(ours, spec_analysis.from_argo(value, path, ours, out, errors), path, errors)
        elif key in ARGO_UNSUPPORTED:
            errors.append(FieldError(path, ARGO_UNSUPPORTED[key]))
        elif key not in ARGO_IGNORED:
            errors.append(
                FieldError(
                    path, f"unknown key {show(key)} (not a field of Argo's blueGreen either)"
                )
            )
    # Argo promotes as soon as the preview is ready unless told to wait (seconds) or not to
    if not enabled:
        out.move("auto_promote", False, "blueGreen.autoPromotionEnabled", errors)
    elif seconds is not MISSING:
        out.move("auto_promote", seconds, "blueGreen.autoPromotionSeconds", errors)
    elif "auto_promote" not in out.spec:
        out.spec["auto_promote"] = 0
    return out


def _auto_promote(value: Any) -> float | None:
    if value is None or value is False:
        return None
    if value is True:
        return 0.0
    try:
        return duration(positive=False)(value)
    except ValueError as exc:
        raise ValueError(f"{exc}; or false to wait for a person") from None


def _read_smoke(fields: Fields) -> list[dict[str, Any]] | None:
    fields.seen.add("smoke")
    raw = fields.raw.get("smoke", [])
    if not isinstance(raw, list):
        fields.error("smoke", f"must be a list of checks like {SMOKE_EXAMPLE}, got {show(raw)}")
        return None
    out = []
    for index, item in enumerate(raw):
        path = f"{fields.path('smoke')}[{index}]"
        if not isinstance(item, dict):
            fields.errors.append(FieldError(path, f"must be an object, got {show(item)}"))
            continue
        check = Fields(item, path, fields.errors)
        if "path" not in item:
            fields.errors.append(FieldError(f"{path}.path", "is required, e.g. '/health'"))
        out.append(
            {
                "path": check.take("path", "/", url_path),
                "status": check.take("status", 200, _status),
                "body_contains": check.take("body_contains", None, _text),
            }
        )
        check.finish()
    return out


def _status(value: Any) -> int:
    try:
        number = whole(100)(value)
    except ValueError:
        number = None
    if number is None or number > 599:
        raise ValueError(f"must be an HTTP status between 100 and 599, got {show(value)}")
    return number


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise ValueError(f"must be a non-empty string, got {show(value)}")
    return value


def _read_analysis(fields: Fields, key: str) -> dict[str, Any] | None:
    fields.seen.add(key)
    if fields.raw.get(key) is None:
        return None
    return spec_analysis.read_ref(fields.raw[key], fields.path(key), fields.errors)
